"""The notices repository's port: what each delivery channel has already sent.

A channel (one `--notify` command or `--webhook`) delivers each notice at most once per
stored id: `poll` records an id after the channel accepted it, so a restart resends
only what was never acknowledged (at-least-once, deduplicated by id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from batchdash.core.models import Batch


class Notices(Protocol):
    """Delivery memory per channel: when it started and which notice ids it sent."""

    def start_channel(self, channel: str, baseline: Sequence[str], now: float) -> bool:
        """Record a new channel with `baseline` (what is already true) as never to be sent.

        Returns False, changing nothing, when the channel already exists.
        """

    def channel_started(self, channel: str) -> float | None:
        """When the channel first ran, or None for a channel never started."""

    def unsent(self, channel: str, ids: Sequence[str]) -> list[str]:
        """Those of `ids` the channel has neither sent nor taken as baseline, in order."""

    def mark_sent(self, channel: str, ids: Sequence[str], now: float) -> None:
        """Remember that the channel delivered these ids (again is harmless)."""

    def ended_batches(self, since: float, limit: int) -> list[Batch]:
        """Batches in a terminal state whose results came in at `since` or later, the
        latest `limit` of them: the batch endings that are news."""
