"""argparse `type=` validators: a bad option value is refused at parse time (exit 2).

Each raises argparse.ArgumentTypeError, which argparse prints as one usage line naming
the option.
"""

from __future__ import annotations

import argparse
import math

#: SQLite stores integers as signed 64-bit: anything outside cannot be written.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer of at least 1 (and at most SQLite's int64)."""
    value = _int(text)
    if not 1 <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, not {text}")
    return value


def int64(text: str) -> int:
    """Any integer SQLite can store (a priority of 10**30 is refused here, not by SQLite)."""
    value = _int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range ({INT64_MIN} to {INT64_MAX})")
    return value


def non_empty(text: str) -> str:
    """A name that is not empty or only spaces (a queue called '' is a typo, not a queue)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text
