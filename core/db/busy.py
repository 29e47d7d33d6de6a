"""The one retry loop of every store: run a transaction again while the database says "busy".

SQLite reports a lock held by another process (SQLITE_BUSY); PostgreSQL reports a
serialization failure or a deadlock. Either way the transaction was rolled back whole, so
running it again is safe; each back end says which errors mean that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds the loop keeps retrying a busy write transaction.
BUSY_RETRY_SECONDS = 60.0


def backoff(attempt: int) -> float:
    """Jittered exponential delay so competing writers do not retry in lockstep."""
    import random  # here: only a busy database pays for it, not every `--once` start

    return float(min(1.0, 0.005 * 2**attempt) * (0.5 + random.random()))


def retry_while_busy(
    fn: Callable[[], T],
    is_busy: Callable[[BaseException], bool],
    seconds: float = BUSY_RETRY_SECONDS,
) -> T:
    """Run `fn`, again after a jittered pause while it fails with an error `is_busy` accepts."""
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(backoff(attempt))
            attempt += 1
