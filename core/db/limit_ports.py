"""The rate-limits port: token buckets per (queue, model) shared by every worker.

Kept apart from `ports.py` (one Protocol per new aggregate); `Tx.limits` hands it out.
The bucket arithmetic is `core.ratelimit.RateLimit`; a back end stores its rows and makes
each call atomic (SQLite's write transaction is exclusive; PostgreSQL locks the rows).
Times passed in are the caller's clock; every back end judges by its store clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from batchdash.core.ratelimit import LimitStatus, RateLimit, Settlement


class Limits(Protocol):
    """Rate limits: set, clear, list, and book requests against them."""

    def set_limit(
        self, queue: str, model: str, rpm: int | None, tpm: int | None, cooldown: float, now: float
    ) -> None:
        """Create or change the limit of a queue's model ('' = all its models)."""

    def clear_limit(self, queue: str, model: str | None, now: float) -> int:
        """Remove a queue's limit for one model (None: all of them); returns how many went."""

    def list_limits(self, queue: str | None = None) -> list[RateLimit]:
        """The stored limits (of one queue, or all), by queue and model."""

    def limited_queues(self) -> frozenset[str]:
        """Queues with any limit (one small read: workers skip the rest for free)."""

    def reserve(self, queue: str, model: str, tokens: int, now: float) -> float:
        """Book one request of `tokens` against the queue's limits for all models and for
        `model`; returns the seconds to wait before sending it (0: at once)."""

    def correct(self, queue: str, model: str, booked: int, used: int, now: float) -> None:
        """Settle a booked request's tokens with what it really used."""

    def note_throttled(self, queue: str, model: str, retry_after: float | None, now: float) -> None:
        """The provider answered 429: lower the effective rate for a while (see ratelimit)."""

    def settle_and_reserve(
        self, settled: Sequence[Settlement], booked: Sequence[tuple[str, str, int]], now: float
    ) -> list[float]:
        """Settle finished requests (`correct`, `note_throttled`), then book new ones
        `(queue, model, tokens)` in order (`reserve`), reading and writing each limit
        involved once (a worker's exchange); returns each booking's wait."""

    def limit_status(self, now: float, queue: str | None = None) -> list[LimitStatus]:
        """Each limit (of one queue, or all) with its effective rate, use and waits."""
