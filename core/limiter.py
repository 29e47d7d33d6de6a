"""The worker's side of queue rate limits: book claimed jobs, settle finished ones.

Both run inside the worker's exchange transaction (the one that records outcomes and
claims jobs), so a limit costs no transaction of its own: `refresh` reads which queues
have limits (one small read per exchange; jobs of other queues pay nothing more), `book`
reserves each newly claimed job of a limited queue and handler (`handlers.rate_limited`)
from its estimate (`core.estimate`), and `settle` corrects the booked tokens from each
finished job's usage and reports the provider's 429s (`ratelimit.THROTTLE_KINDS`) with
their retry-after, which holds the lowered rate at least that long.

A booked job waits `wait_of(job_id)` seconds before its handler runs; it holds its claim
meanwhile and the heartbeat keeps extending its lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchdash.core.db.ports import Tx
from batchdash.core.estimate import estimate_request_tokens, request_model
from batchdash.core.handlers import rate_limited
from batchdash.core.models import Claim, Outcome
from batchdash.core.ratelimit import THROTTLE_KINDS


@dataclass(frozen=True, slots=True)
class Booking:
    """A job's reservation: what it was booked as and how long it must wait."""

    queue: str
    model: str
    tokens: int
    wait: float


class WorkerLimiter:
    """Bookings of one worker's jobs in flight, by job id."""

    def __init__(self) -> None:
        self.limited: frozenset[str] = frozenset()
        self.bookings: dict[int, Booking] = {}

    def refresh(self, tx: Tx) -> None:
        """Learn which queues have limits (they can change at any time)."""
        self.limited = tx.limits.limited_queues()

    def book(self, tx: Tx, claims: Sequence[Claim], now: float) -> None:
        """Reserve each claimed job of a limited queue whose handler calls a model."""
        for claimed in claims:
            if claimed.queue not in self.limited or not rate_limited(claimed.handler):
                continue
            model = request_model(claimed.payload)
            tokens = sum(estimate_request_tokens(claimed.payload))
            wait = tx.limits.reserve(claimed.queue, model, tokens, now)
            self.bookings[claimed.job_id] = Booking(claimed.queue, model, tokens, wait)

    def settle(self, tx: Tx, outcomes: Sequence[Outcome], now: float) -> None:
        """Correct booked tokens from usage; a 429 lowers the rate of the job's limits."""
        for outcome in outcomes:
            booking = self.bookings.pop(outcome.job_id, None)
            if booking is None:
                continue
            if outcome.error_kind in THROTTLE_KINDS:
                tx.limits.note_throttled(booking.queue, booking.model, outcome.retry_after, now)
            if outcome.input_tokens is not None and outcome.output_tokens is not None:
                used = outcome.input_tokens + outcome.output_tokens
                tx.limits.correct(booking.queue, booking.model, booking.tokens, used, now)

    def wait_of(self, job_id: int) -> float:
        """Seconds this job must wait before its handler runs (0: unlimited or at once)."""
        booking = self.bookings.get(job_id)
        return booking.wait if booking is not None else 0.0
