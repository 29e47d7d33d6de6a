"""Benchmark-only: run batchdash with every SQLite connection at a chosen `synchronous` level.

batchdash's store sets `PRAGMA synchronous = NORMAL` on each connection it opens (the
product default, unchanged). To compare it with huey at huey's default `FULL`, the queue
benchmark runs batchdash with `force(level)` in effect: every new `sqlite3` connection in
the process gets `PRAGMA synchronous = <level>` first, and an authorizer turns any later
`PRAGMA synchronous = …` on that connection (the store's own) into a no-op. Reading the
pragma still works, which is how the benchmark checks the level really applied.

    python benchmarks/synchronous.py FULL worker --db PATH ...   # `python -m batchdash ...`
"""

from __future__ import annotations

import functools
import runpy
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _keep_synchronous(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    """Authorizer: ignore writes to `synchronous`, allow everything else."""
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "synchronous" and arg2:
        return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


def _pinned_connect(original: Callable[..., sqlite3.Connection], level: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(*args, **kwargs)
        conn.execute(f"PRAGMA synchronous = {level}")
        conn.set_authorizer(_keep_synchronous)
        return conn

    return connect


@contextmanager
def force(level: str) -> Iterator[None]:
    """Within the block, every new sqlite3 connection in this process runs at `level`."""
    if level.upper() not in LEVELS:
        raise ValueError(f"synchronous level must be one of {', '.join(LEVELS)}, not {level!r}")
    original = sqlite3.connect
    sqlite3.connect = _pinned_connect(original, level.upper())  # type: ignore[assignment]
    try:
        yield
    finally:
        sqlite3.connect = original  # type: ignore[assignment]


def main() -> None:
    """`synchronous.py LEVEL ARGS...`: `python -m batchdash ARGS...` at that level."""
    level, *rest = sys.argv[1:]
    sys.argv = ["batchdash", *rest]
    with force(level):
        runpy.run_module("batchdash", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
