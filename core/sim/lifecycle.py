"""A simulated batch and its lifecycle, derived lazily from the time elapsed since creation.

Nothing runs in the background. A batch keeps its creation instant and its input plan; the
status, the lines processed and the timestamps at any moment follow from the elapsed time
scaled by `SimConfig.speed`, the batch's quirk, and when (if ever) it was cancelled.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict
from batchdash.core.sim.quirks import BatchQuirk
from batchdash.core.sim.validation import InputPlan

EXPIRY_S: Final = 24 * 3600
TIMESTAMP_FIELDS: Final = {
    "in_progress": "in_progress_at",
    "finalizing": "finalizing_at",
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelling": "cancelling_at",
    "cancelled": "cancelled_at",
}
CANCELLABLE: Final = frozenset({"validating", "in_progress", "finalizing"})
WITH_RESULTS: Final = frozenset({"completed", "expired", "cancelled"})


def zero_usage() -> JsonDict:
    """The `usage` object of a batch with no answered request."""
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


@dataclass(frozen=True)
class Results:
    """The result files of a finished batch (ids as the batch object reports them)."""

    output_file_id: str | None
    error_file_id: str | None
    usage: JsonDict


@dataclass(frozen=True)
class Snapshot:
    """A batch's state at one instant, derived from its schedule."""

    status: str
    processed: int
    events: tuple[tuple[str, float], ...]
    """Statuses reached so far with their simulated time since creation, in order."""


@dataclass
class SimBatch:
    """One batch of the simulator: what it was created with, and its schedule."""

    id: str
    seq: int
    endpoint: str
    input_file_id: str
    input_path: Path
    metadata: dict[str, str] | None
    quirk: BatchQuirk | None
    plan: InputPlan
    config: SimConfig
    created_wall: float = field(default_factory=time.time)
    created_mono: float = field(default_factory=time.monotonic)
    extra_s: float = 0.0
    """Simulated seconds added to processing (slow requests of an Anthropic batch)."""
    cancel_at: float | None = None
    """Simulated seconds after creation when cancel was accepted."""
    results: Results | None = None
    """Set once, when the result files have been written."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        """Simulated seconds since the batch was created."""
        return (time.monotonic() - self.created_mono) * self.config.speed

    def wall(self, sim_time: float) -> int:
        """Unix timestamp of a simulated instant of this batch."""
        return int(self.created_wall + sim_time / self.config.speed)

    def _stop_line(self) -> int:
        """How many lines get processed if nothing interrupts (half of them for `expire`)."""
        total = self.plan.total
        return total // 2 if self.quirk is BatchQuirk.EXPIRE else total

    def _processing_end(self) -> float:
        cfg = self.config
        return cfg.validating_s + self._stop_line() / cfg.lines_per_second + self.extra_s

    def _natural_events(self) -> list[tuple[str, float]]:
        """The status schedule when nobody cancels."""
        cfg = self.config
        events = [("validating", 0.0)]
        if self.plan.errors:
            return [*events, ("failed", cfg.validating_s)]
        end = self._processing_end()
        events.append(("in_progress", cfg.validating_s))
        if self.quirk is BatchQuirk.EXPIRE:
            return [*events, ("expired", end + cfg.expire_stall_s)]
        stalled = self.quirk is BatchQuirk.STALL_FINALIZING
        finalizing = cfg.stall_finalizing_s if stalled else cfg.finalizing_s
        return [*events, ("finalizing", end), ("completed", end + finalizing)]

    def _processed_at(self, sim_time: float) -> int:
        """Lines finished by `sim_time` (processing runs in input order)."""
        if sim_time >= self._processing_end():
            return self._stop_line()  # exact, whatever the float rounding below
        elapsed = sim_time - self.config.validating_s
        if elapsed < 0:
            return 0
        if self.extra_s > 0:
            # slow requests stretch the whole run: lines finish evenly over the longer span
            span = self._processing_end() - self.config.validating_s
            return min(self._stop_line(), int(self._stop_line() * elapsed / span))
        return min(self._stop_line(), int(elapsed * self.config.lines_per_second))

    def snapshot(self, now: float) -> Snapshot:
        """The state at simulated time `now` (seconds since creation)."""
        events = self._natural_events()
        horizon = now
        if self.cancel_at is not None:
            cancel_at = self.cancel_at
            slow = self.quirk is BatchQuirk.SLOW_CANCEL
            duration = self.config.slow_cancel_s if slow else self.config.cancel_s
            events = [e for e in events if e[1] < cancel_at]
            events += [("cancelling", cancel_at), ("cancelled", cancel_at + duration)]
            horizon = min(now, cancel_at)  # lines finished before the cancel call only
        reached = tuple(e for e in events if e[1] <= now)
        return Snapshot(reached[-1][0], self._processed_at(horizon), reached)

    def to_json(self, snap: Snapshot) -> JsonDict:
        """The OpenAI `batch` object in state `snap`."""
        reached = dict(snap.events)
        stamps = {
            name: self.wall(reached[status]) if status in reached else None
            for status, name in TIMESTAMP_FIELDS.items()
        }
        failed = (
            snap.processed
            if self.quirk is BatchQuirk.ALL_FAILED
            else self.plan.errline_prefix[snap.processed]
        )
        results = self.results if snap.status in WITH_RESULTS else None
        errors = {"object": "list", "data": self.plan.errors} if snap.status == "failed" else None
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.plan.model,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": snap.status,
            "output_file_id": results.output_file_id if results else None,
            "error_file_id": results.error_file_id if results else None,
            "created_at": int(self.created_wall),
            "expires_at": int(self.created_wall) + EXPIRY_S,
            **stamps,
            "request_counts": {
                "total": self.plan.total if "in_progress" in reached else 0,
                "completed": snap.processed - failed,
                "failed": failed,
            },
            "usage": results.usage if results else zero_usage(),
            "metadata": self.metadata,
        }
