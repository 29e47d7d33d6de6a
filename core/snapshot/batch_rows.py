"""The batches pane and the batch detail: progress, timing and ETA of remote batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.models import (
    ACTIVE_BATCH_STATES,
    Batch,
    BatchItem,
    BatchState,
    Event,
)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A remote batch with its progress and where it is in time.

    `timing` is a phrase like "expires in" / "finalizing for" / "ended" and `seconds` the
    span it refers to (None when the provider has not said), formatted by the front end.
    """

    batch: Batch
    progress: float
    timing: str
    seconds: float | None
    eta_seconds: float | None = None

    @property
    def active(self) -> bool:
        """The provider is still working on it."""
        return self.batch.state in ACTIVE_BATCH_STATES

    def to_dict(self) -> dict[str, Any]:
        """The fields `--json` shows for a batch."""
        b = self.batch
        return {
            "id": b.id,
            "remote_id": b.remote_id,
            "queue": b.queue,
            "endpoint": b.endpoint,
            "model": b.model,
            "state": b.state,
            "raw_status": b.raw_status,
            "total": b.total,
            "completed": b.completed,
            "failed": b.failed,
            "progress": round(self.progress, 4),
            "timing": self.timing,
            "timing_seconds": None if self.seconds is None else round(self.seconds, 1),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "created_at": b.created_at,
            "expires_at": b.expires_at,
            "input_file_id": b.input_file_id,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "errors": b.errors,
            "poll_error": b.poll_error,
            "cost": b.cost,
            # Also what `batches list/show --json` showed before they took this shape.
            "provider": b.provider,
            "parent_id": b.parent_id,
            "metadata": b.metadata,
            "remote_created_at": b.remote_created_at,
            "completed_at": b.completed_at,
            "input_tokens": b.input_tokens,
            "output_tokens": b.output_tokens,
        }


def batch_timing(batch: Batch, now: float) -> tuple[str, float | None]:
    """Time to expiry while it runs, how long it has been in a slow phase, or since it ended."""

    def since(at: float | None) -> float | None:
        return None if at is None else max(0.0, now - at)

    state = batch.state
    if state == BatchState.RUNNING and batch.expires_at is not None:
        return "expires in", max(0.0, batch.expires_at - now)
    phases = {
        BatchState.SUBMITTING: batch.created_at,
        BatchState.VALIDATING: batch.remote_created_at or batch.created_at,
        BatchState.RUNNING: batch.in_progress_at,
        BatchState.FINALIZING: batch.finalizing_at,
        BatchState.CANCELLING: batch.cancelling_at,
    }
    if state in phases:
        return f"{state} for", since(phases[BatchState(state)])
    ended = (
        batch.completed_at
        or batch.failed_at
        or batch.expired_at
        or batch.cancelled_at
        or batch.polled_at
    )
    return (
        ("ended", since(ended)) if batch.state != BatchState.UNKNOWN else ("polled", since(ended))
    )


def batch_eta(batch: Batch, now: float) -> float | None:
    """Seconds until a running batch is through its lines, from its own request counts.

    The provider's done count, as of the last poll, over the time it had been running then;
    None (unknown) until it has started and finished a line, once it is not running, and
    when that pace says it should already be done.
    """
    done = batch.completed + batch.failed
    started = batch.in_progress_at
    if batch.state != BatchState.RUNNING or started is None or not 0 < done < batch.total:
        return None
    counted_at = batch.polled_at or now
    elapsed = counted_at - started
    if elapsed <= 0:
        return None
    left = (batch.total - done) * elapsed / done - (now - counted_at)
    return left if left > 0 else None


def batch_row(batch: Batch, now: float) -> BatchRow:
    """A batch with its progress fraction (from request counts), timing and ETA."""
    done = batch.completed + batch.failed
    progress = done / batch.total if batch.total else 0.0
    timing, seconds = batch_timing(batch, now)
    return BatchRow(batch, min(1.0, progress), timing, seconds, batch_eta(batch, now))


def batches(tx: Tx, now: float, limit: int = 50, offset: int = 0) -> list[BatchRow]:
    """One page of batches: active ones first, then the most recent ones."""
    page = tx.batches.list_batches(active_first=True, limit=limit, offset=offset)
    return [batch_row(b, now) for b in page]


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """One batch with its items of one outcome (a page), outcome counts and events."""

    row: BatchRow
    outcomes: dict[str, int]
    outcome: str | None
    items: list[BatchItem]
    events: list[Event]


def batch_detail(
    tx: Tx,
    batch_id: int,
    now: float,
    outcome: str | None = None,
    limit: int = 200,
) -> BatchDetail | None:
    """A batch's detail; `outcome` narrows the items shown. None if it no longer exists."""
    try:
        batch = tx.batches.get_batch(batch_id)
    except NotFoundError:
        return None
    items = tx.items.list_batch_items(batch_id, outcomes=(outcome,) if outcome else (), limit=limit)
    return BatchDetail(
        row=batch_row(batch, now),
        outcomes=tx.items.batch_outcome_counts(batch_id),
        outcome=outcome,
        items=items,
        events=tx.events.batch_events(batch_id),
    )
