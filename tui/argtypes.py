"""Range-checked argparse types, so a harmful value is refused at parse time.

`type=positive_float` makes `--lease -1` exit 2 with "argument --lease: must be > 0, got -1"
before anything starts; argparse prefixes the option name itself.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

#: SQLite stores integers as signed 64-bit: anything outside cannot be written.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def at_least(minimum: float, kind: type[float] | type[int] = float) -> Callable[[str], float]:
    """A type accepting numbers >= `minimum` (e.g. `at_least(0.01)` for a poll interval)."""

    def parse(text: str) -> float:
        value = _number(text, kind)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    """A float > 0 (seconds of a lease, a heartbeat, a timeout)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of workers, a concurrency)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    if value > INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be <= {INT64_MAX}, got {text}")
    return value


def int64(text: str) -> int:
    """Any integer SQLite can store (a priority of 10**30 is refused here, not by SQLite)."""
    value = int(_number(text, int))
    if not INT64_MIN <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range ({INT64_MIN} to {INT64_MAX})")
    return value


def non_negative_float(text: str) -> float:
    """A float >= 0 (a grace period, where 0 means none)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A float in [0, 1] (a rate)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def non_empty(text: str) -> str:
    """A string with something in it (a queue name)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print `PROG: error: MESSAGE` and exit 2; `--help` still shows the usage."""
        self.exit(2, f"{self.prog}: error: {message}\n")
