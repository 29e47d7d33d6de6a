"""Range-checked click types, so a harmful value is refused at parse time.

`type=checked(positive_float)` makes `--lease -1` exit 2 with "argument --lease: must be > 0,
got -1" before anything starts; the CLI's error formatter prefixes the option name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")


class RangeError(ValueError):
    """A value outside what its option accepts; the message says what is allowed."""


#: SQLite stores integers as signed 64-bit: anything outside cannot be written.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise RangeError(f"not a number: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise RangeError(f"must be a finite number, got {text}")
    return value


def at_least(minimum: float, kind: type[float] | type[int] = float) -> Callable[[str], float]:
    """A type accepting numbers >= `minimum` (e.g. `at_least(0.01)` for a poll interval)."""

    def parse(text: str) -> float:
        value = _number(text, kind)
        if value < minimum:
            raise RangeError(f"must be >= {minimum:g}, got {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    """A float > 0 (seconds of a lease, a heartbeat, a timeout)."""
    value = _number(text, float)
    if value <= 0:
        raise RangeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of workers, a concurrency)."""
    value = int(_number(text, int))
    if value < 1:
        raise RangeError(f"must be >= 1, got {text}")
    if value > INT64_MAX:
        raise RangeError(f"must be <= {INT64_MAX}, got {text}")
    return value


def int64(text: str) -> int:
    """Any integer SQLite can store (a priority of 10**30 is refused here, not by SQLite)."""
    value = int(_number(text, int))
    if not INT64_MIN <= value <= INT64_MAX:
        raise RangeError(f"{text} is out of range ({INT64_MIN} to {INT64_MAX})")
    return value


def non_negative_float(text: str) -> float:
    """A float >= 0 (a grace period, where 0 means none)."""
    value = _number(text, float)
    if value < 0:
        raise RangeError(f"must be >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A float in [0, 1] (a rate)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise RangeError(f"must be between 0 and 1, got {text}")
    return value


def non_empty(text: str) -> str:
    """A string with something in it (a queue name)."""
    if not text.strip():
        raise RangeError("must not be empty")
    return text


#: Seconds per unit of a duration: `90s`, `15m`, `12h`, `30d`, `2w`.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """A positive span of time, a number and a unit (`30d`, `12h`, `90m`, `45s`, `2w`)."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        value = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise RangeError(f"not a duration: {text!r} (use e.g. 30d, 12h, 90m, 45s)") from None
    if not math.isfinite(value) or value <= 0:
        raise RangeError(f"must be a positive duration, got {text}")
    return value


def point_in_time(text: str) -> float:
    """A time as epoch seconds: ISO (`2026-11-29`, `2026-11-29T08:00`, local time unless it
    gives an offset such as `Z` or `+02:00`) or that long ago (`2h`, `7d`)."""
    from datetime import datetime

    if text.strip()[-1:].lower() in _UNITS:  # an ISO time never ends in a unit letter
        return time.time() - duration(text)
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RangeError(
            f"not a time: {text!r} (use an ISO date or time such as 2026-11-29 or "
            "2026-11-29T08:00, or an age such as 2h or 7d)"
        ) from None


class Checked(click.ParamType[T]):
    """A click type from one of the checks above: its RangeError becomes a usage error."""

    def __init__(self, check: Callable[[str], T], metavar: str) -> None:
        self.check = check
        self.name = metavar.lower()
        self.metavar = metavar

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """The placeholder shown in help (NUMBER, SECONDS, NAME)."""
        return self.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        """Check `value` (already converted when it is a default)."""
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]
        try:
            return self.check(value)
        except RangeError as exc:
            self.fail(str(exc), param, ctx)


POSITIVE_INT = Checked(positive_int, "N")
POSITIVE_FLOAT = Checked(positive_float, "SECONDS")
NON_NEGATIVE_FLOAT = Checked(non_negative_float, "SECONDS")
INT64 = Checked(int64, "N")
FRACTION = Checked(fraction, "RATE")
NON_EMPTY = Checked(non_empty, "NAME")
DURATION = Checked(duration, "AGE")
WHEN = Checked(point_in_time, "TIME")
