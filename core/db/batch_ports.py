"""The store's ports for remote batches: the `Batches` and `BatchItems` repositories.

Part of `ports.py` (which `Tx` joins them in), kept apart only for size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only
    from batchdash.core.batch_records import ErrorMatch, ItemResult, NewBatch
    from batchdash.core.models import Batch, BatchItem, JobFilter


class Batches(Protocol):
    """Remote batches: rows, states, poll and submit leases."""

    def list_batches(
        self,
        *,
        active_only: bool = False,
        active_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
        states: Sequence[str] = (),
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> list[Batch]:
        """Batches newest first (active ones first when asked); `limit`/`offset` page them.

        `states` (normalized) and `created_after` (inclusive) / `created_before` (exclusive)
        narrow the list."""

    def count_batches(self) -> int:
        """How many batches are tracked."""

    def get_batch(self, batch_id: int | str) -> Batch:
        """A batch by local id or by the provider's id, or NotFoundError."""

    def inflight_batch_keys(self, queue: str) -> list[str]:
        """Keys of a queue's remote-batch jobs still waiting for their results."""

    def qa_batches_to_collect(self, meta_key: str) -> list[Batch]:
        """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet."""

    def mark_qa_collected(self, batch: Batch, detail: str, now: float) -> None:
        """Record that a QA batch's verdicts are stored (it is not collected again)."""

    def add_batch(self, new: NewBatch, now: float) -> int:
        """Insert a batch row with its first timeline event; returns the local id."""

    def update_batch(
        self,
        batch_id: int,
        fields: dict[str, Any],
        now: float,
        event: tuple[str, str | None] | None = None,
    ) -> None:
        """Set some columns of a batch (names checked), optionally with a timeline event."""

    def record_remote(self, batch_id: int, fields: dict[str, Any], now: float) -> bool:
        """Store a successful poll, unless it would move the batch backwards; True if stored."""

    def note_poll_failure(self, batch_id: int, error: str, now: float) -> int:
        """Record a failed provider call on the batch; returns its consecutive failure count."""

    def mark_unreachable(self, batch_id: int, now: float) -> bool:
        """Note since when a batch cannot be reached (kept while it stays so); True if new."""

    def settled_batches(self, batch_ids: Sequence[int]) -> set[int]:
        """Those of these batches that were resubmitted and own no failed job any more."""

    def batch_children(self, batch_id: int) -> list[int]:
        """Local ids of the batches resubmitted from this one."""

    def batches_due(self, now: float) -> list[Batch]:
        """Submitted batches to poll now, and finished ones whose results are not in yet."""

    def claim_batch_poll(
        self,
        batch_id: int,
        owner: str,
        until: float,
        now: float,
        dead_owner: str | None = None,
    ) -> Batch | None:
        """Take the poll lease of a batch still due, in one compare-and-set UPDATE."""

    def renew_batch_poll(self, batch_id: int, owner: str, until: float) -> bool:
        """Extend our poll lease; False when another poller took the batch over."""

    def release_batch_poll(self, batch_id: int, owner: str) -> None:
        """Give the poll lease back, if this owner still holds it."""

    def submitting_batches(self) -> list[Batch]:
        """Batches whose submission has not been confirmed by the provider yet."""

    def known_remote_ids(self) -> set[str]:
        """Every provider batch id already tracked locally."""

    def get_submit_lease(self, batch_id: int) -> tuple[str, float] | None:
        """(owner, expires_at) of whoever is submitting this batch, if anyone."""

    def put_submit_lease(self, batch_id: int, owner: str, expires_at: float) -> None:
        """Take or extend the right to submit this batch (the caller checked it may)."""

    def drop_submit_lease(self, batch_id: int, owner: str) -> None:
        """Release the submit lease if this owner still holds it."""


class BatchItems(Protocol):
    """Batch items (one per custom_id): lines, result ingestion, resubmission."""

    def batch_outcome_counts(self, batch_id: int) -> dict[str, int]:
        """How many of a batch's items ended in each outcome."""

    def list_batch_items(
        self,
        batch_id: int,
        *,
        outcomes: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[BatchItem]:
        """A batch's items (optionally of some outcomes), in line order."""

    def existing_job_keys(self, queue: str, keys: Sequence[str]) -> dict[str, int]:
        """Which of these keys already name a job of the queue (key → job id)."""

    def add_batch_lines(
        self,
        batch_id: int,
        queue: str,
        handler: str,
        lines: Sequence[tuple[int, str, str, str]],
        now: float,
    ) -> None:
        """Insert (line_no, custom_id, job key, payload JSON) as items and their pending jobs."""

    def batch_lines_enqueued(self, batch_id: int, now: float) -> None:
        """Write the `enqueued` event of every job of a freshly recorded batch."""

    def batch_upload_rows(self, batch_id: int) -> Iterator[tuple[str, str]]:
        """(custom_id, payload JSON) of a batch's lines in upload order, streamed."""

    def apply_item_results(
        self,
        batch_id: int,
        results: Sequence[tuple[ItemResult, str, str | None]],
        now: float,
    ) -> None:
        """Record (result, job status, job error kind) per custom_id, set-based and idempotent."""

    def pending_item_ids(self, batch_id: int) -> list[str]:
        """custom_ids of a batch's items that no result has mentioned yet."""

    def batch_item_lines(self, batch_id: int, line_nos: Sequence[int]) -> list[tuple[str, int]]:
        """(custom_id, line_no) of the items on these upload lines."""

    def close_ingest(self, batch_id: int, state: str, now: float) -> bool:
        """Totals from the items onto the batch, the final state, and `ingested_at`."""

    def count_batch_items(self, batch_id: int) -> int:
        """How many lines (items) a batch has locally."""

    def resubmit_items(
        self,
        parent_id: int,
        child_id: int,
        outcomes: Sequence[str],
        now: float,
        *,
        leave_out: ErrorMatch = ...,
    ) -> int:
        """Give a child batch the parent's items of these outcomes, and move their jobs to it."""

    def resubmittable_counts(
        self, batch_id: int, outcomes: Sequence[str], special: ErrorMatch
    ) -> tuple[int, int]:
        """(lines a resubmit would send, how many of them match `special`), jobs still owned."""

    def remote_job_batches(self, flt: JobFilter) -> dict[int, int]:
        """Batch id → how many of the failed/cancelled jobs matching `flt` that batch ran."""

    def batch_result_rows(self, batch_id: int) -> Iterator[dict[str, Any]]:
        """Each item of a batch with its job's current result, in line order, streamed."""
