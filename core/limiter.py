"""The worker's side of queue rate limits: book claimed jobs, settle finished ones.

Both run inside the worker's exchange transaction (the one that records outcomes and
claims jobs), so a limit costs no transaction of its own: `refresh` reads which queues
have limits (one small read a second; jobs of other queues pay nothing more), and
`exchange` settles the finished jobs' bookings (their tokens corrected from usage, the
provider's 429s (`ratelimit.THROTTLE_KINDS`) reported with their retry-after, which holds
the lowered rate at least that long), then books each newly claimed job of a limited queue
and handler (`handlers.rate_limited`) from its estimate (`core.estimate`), reading and
writing the limits once.

A booked job waits `wait_of(job_id)` seconds before its handler runs; it holds its claim
meanwhile and the heartbeat keeps extending its lease.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from batchdash.core.db.ports import Tx
from batchdash.core.estimate import booking_estimate
from batchdash.core.handlers import rate_limited
from batchdash.core.models import Claim, Outcome
from batchdash.core.ratelimit import THROTTLE_KINDS, Settlement

#: Seconds a worker trusts its list of limited queues (jobs of other queues pay nothing).
REFRESH_SECONDS = 1.0


class Booking(NamedTuple):
    """A job's reservation: what it was booked as and how long it must wait (a named
    tuple: made for every booked job inside the transaction, twice as fast as a frozen
    dataclass)."""

    queue: str
    model: str
    tokens: int
    wait: float


class WorkerLimiter:
    """Bookings of one worker's jobs in flight, by job id."""

    def __init__(self) -> None:
        self.limited: frozenset[str] = frozenset()
        self.bookings: dict[int, Booking] = {}
        self._refreshed_at = float("-inf")

    def refresh(self, tx: Tx) -> None:
        """Learn which queues have limits, at most once every `REFRESH_SECONDS` (a limit
        set or cleared applies to this worker's claims within that long)."""
        now = time.monotonic()
        if now - self._refreshed_at >= REFRESH_SECONDS:
            self.limited = tx.limits.limited_queues()
            self._refreshed_at = now

    def exchange(
        self, tx: Tx, outcomes: Sequence[Outcome], claims: Sequence[Claim], now: float
    ) -> None:
        """Settle the finished jobs' bookings, then book the claimed jobs of limited queues
        whose handler calls a model, in claim order (one read and write of the limits)."""
        settled = self._settlements(outcomes) if self.bookings else []
        wanted = [
            (c.job_id, c.queue, *booking_estimate(c.payload))
            for c in claims
            if c.queue in self.limited and rate_limited(c.handler)
        ]
        if not settled and not wanted:
            return
        requests = [(queue, model, tokens) for _, queue, model, tokens in wanted]
        waits = tx.limits.settle_and_reserve(settled, requests, now)
        for (job_id, queue, model, tokens), wait in zip(wanted, waits, strict=True):
            self.bookings[job_id] = Booking(queue, model, tokens, wait)

    def _settlements(self, outcomes: Sequence[Outcome]) -> list[Settlement]:
        """What the finished jobs used of their bookings: token corrections summed per
        queue and model (they add up, and one settlement is cheaper than many), and one
        settlement per 429 (with its retry-after)."""
        sums: dict[tuple[str, str], tuple[int, int]] = {}
        throttles = []
        for outcome in outcomes:
            booking = self.bookings.get(outcome.job_id)
            if booking is None:
                continue
            key = (booking.queue, booking.model)
            if outcome.input_tokens is not None and outcome.output_tokens is not None:
                booked, used = sums.get(key, (0, 0))
                used += outcome.input_tokens + outcome.output_tokens
                sums[key] = (booked + booking.tokens, used)
            if outcome.error_kind in THROTTLE_KINDS:
                throttles.append(Settlement(*key, 0, None, True, outcome.retry_after))
        return [Settlement(*key, *tokens) for key, tokens in sums.items()] + throttles

    def forget(self, outcomes: Sequence[Outcome]) -> None:
        """Drop the bookings of finished jobs once their exchange committed (`exchange`
        itself changes nothing but new bookings, so a retried transaction is harmless)."""
        for outcome in outcomes:
            self.bookings.pop(outcome.job_id, None)

    def wait_of(self, job_id: int) -> float:
        """Seconds this job must wait before its handler runs (0: unlimited or at once)."""
        booking = self.bookings.get(job_id)
        return booking.wait if booking is not None else 0.0
