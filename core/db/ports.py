"""The store's ports: what domain code asks of a database, as typed Protocols.

Domain code (`worker.py`, `batches.py`, `qa/`, `snapshot/`, the CLI and the dashboard)
talks only to these: a `Store` runs a callable inside one read or write transaction and
hands it a `Tx`, whose attributes are one repository per aggregate:

    claims = await db.write(lambda tx: tx.jobs.claim(worker_id, token, 16, 60.0, (), now))

`core/db/sqlite/` implements them on SQLite; another back end (PostgreSQL) implements the
same Protocols and passes the same contract suite (`tests/contract/`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from batchdash.core.db.location import DbLocation

if TYPE_CHECKING:  # annotations only: importing the store never builds these classes
    from batchdash.core.batch_records import ErrorMatch, ItemResult, NewBatch
    from batchdash.core.models import (
        Batch,
        BatchItem,
        Claim,
        Event,
        HeartbeatReply,
        Job,
        JobFilter,
        NewJob,
        Outcome,
        QAResult,
        QASummary,
        QueueInfo,
        Spend,
        Worker,
    )

T = TypeVar("T")


class Jobs(Protocol):
    """Jobs: enqueue, claim, finish, cancel, retry, rescue, and every job read."""

    def count_jobs(self, flt: JobFilter) -> int:
        """Count matching jobs, from job_counts when the filter allows it (no table scan)."""

    def list_jobs(
        self,
        flt: JobFilter = ...,
        limit: int | None = None,
        offset: int = 0,
        order: str = "id",
        *,
        with_bodies: bool = True,
    ) -> list[Job]:
        """One page (or all, when `limit` is None) of jobs matching `flt` (default: all)."""

    def iter_jobs(self, flt: JobFilter = ..., order: str = "id") -> Iterator[Job]:
        """Every job matching `flt` (default: all), streamed row by row (exports of any size)."""

    def get_job(self, job_id: int) -> Job:
        """The job with this id, or NotFoundError."""

    def get_job_head(self, job_id: int, chars: int) -> tuple[Job, dict[str, int]]:
        """The job with its error, payload and result each cut to `chars` characters."""

    def next_run_after(self, now: float) -> float | None:
        """When the earliest delayed (retrying) job becomes runnable, if any is waiting."""

    def count_jobs_upto(self, flt: JobFilter, cap: int) -> tuple[int, bool]:
        """(count, exact): exact from job_counts when the filter allows, else counted to `cap`."""

    def enqueue(
        self,
        queue: str,
        handler: str,
        jobs: Sequence[NewJob],
        now: float,
        batch_id: int | None,
        endpoint_name: str | None = None,
    ) -> tuple[int, int]:
        """Insert jobs, skipping keys already in the queue; returns (inserted, skipped).

        `endpoint_name` is the named endpoint their handler calls (None: the default).
        """

    def claim(
        self,
        worker_id: str,
        token: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[str],
        now: float,
    ) -> list[Claim]:
        """Claim up to `limit` runnable jobs in one UPDATE … RETURNING statement."""

    def finish(self, worker_id: str | None, outcomes: Sequence[Outcome]) -> list[int]:
        """Apply fenced outcomes; returns the ids whose claim was still valid."""

    def cancel(self, flt: JobFilter, now: float) -> tuple[int, int]:
        """Cancel pending jobs at once and flag running ones; returns (cancelled, flagged)."""

    def retry(self, flt: JobFilter, now: float) -> int:
        """Put failed/cancelled local jobs back to pending with a fresh set of attempts."""

    def rescue(self, flt: JobFilter, now: float) -> int:
        """Take back running jobs whose lease expired (their worker died or hung)."""

    def require_jobs(self, ids: Sequence[int]) -> None:
        """Raise NotFoundError naming the first id that does not exist."""

    def existing_job_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of these job ids exist."""


class Queues(Protocol):
    """Queues: creation, pause, listing, QA rubric."""

    def ensure_queue(self, name: str, now: float) -> None:
        """Create the queue if it does not exist yet."""

    def set_paused(self, queue: str, paused: bool, now: float) -> None:
        """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown."""

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its pause flag and job counts per status."""

    def require_queue(self, name: str) -> None:
        """Raise NotFoundError if the queue does not exist."""

    def set_qa_rubric(self, queue: str, rubric_json: str | None) -> None:
        """Set (or with None, reset to the default) the QA rubric of a queue."""

    def get_qa_rubric(self, queue: str) -> str | None:
        """A queue's QA rubric as stored (JSON text), None when it uses the default."""


class Events(Protocol):
    """The event timeline of jobs, queues, workers and batches."""

    def list_events(
        self, job_id: int | None, after_id: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events in order, for one job or all, after an event id (for incremental export)."""

    def job_events(self, flt: JobFilter, after_id: int, limit: int) -> list[Event]:
        """A page of the events of the jobs matching `flt`, in order, after an event id."""

    def batch_events(self, batch_id: int, limit: int = 200) -> list[Event]:
        """The latest events of one batch (oldest first), through the events_batch index."""


class Workers(Protocol):
    """Worker processes: registration, heartbeats, release, staleness."""

    def register_worker(self, worker: Worker) -> None:
        """Record a starting worker process (its first heartbeat)."""

    def heartbeat(
        self,
        worker_id: str,
        state: str,
        held: Sequence[tuple[int, str]],
        done: int,
        failed: int,
        lease_seconds: float,
        now: float,
    ) -> HeartbeatReply:
        """Record a heartbeat, extend the worker's leases; says which held jobs to cancel
        and whether the worker was asked to stop (`request_stop`)."""

    def set_worker_note(self, worker_id: str, note: str | None) -> None:
        """Set (or clear, with None) the note shown beside a worker's state."""

    def release(self, worker_id: str, held: Sequence[tuple[int, str]], now: float) -> int:
        """Give a draining worker's unfinished jobs back to pending; the attempt is not counted."""

    def set_worker_state(self, worker_id: str, state: str, now: float) -> None:
        """Set a worker's state; stopping or dying also clears its current jobs."""

    def mark_stale_workers(self, factor: float, now: float) -> list[str]:
        """Flag live-looking workers whose heartbeat is older than `factor` intervals."""

    def list_workers(self) -> list[Worker]:
        """All workers, most recent heartbeat first."""

    def request_stop(self, worker_ids: Sequence[str]) -> list[str]:
        """Ask live workers to drain and stop at their next heartbeat; returns those asked."""


class Batches(Protocol):
    """Remote batches: rows, states, poll and submit leases."""

    def list_batches(
        self,
        *,
        active_only: bool = False,
        active_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Batch]:
        """Batches newest first (active ones first when asked); `limit`/`offset` page them."""

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


class QAResults(Protocol):
    """QA verdicts: judge scores, sampling, summaries."""

    def qa_results_for_job(self, job_id: int) -> list[QAResult]:
        """Every judge's verdict on one job, with its per-dimension scores."""

    def qa_summary(self, *, queue: str | None = None, worst: int = 10) -> QASummary:
        """Aggregates over QA results, computed in SQL (optionally for one queue)."""

    def save_qa_result(self, result: QAResult, *, replace: bool) -> bool:
        """Store a verdict with its scores and a timeline event; False when it was skipped."""

    def qa_sample_ids(
        self,
        flt: JobFilter,
        *,
        limit: int | None = None,
        fraction: float | None = None,
        skip_queue_prefix: str | None = None,
    ) -> list[int]:
        """Ids of the matching jobs to judge: a deterministic sample, the same on every rerun."""

    def number_qa_successes(self, job_ids: Sequence[int]) -> list[int]:
        """Count these successes in their queues' QA tallies; each one's number, in order."""

    def qa_scored_pairs(
        self, job_ids: Sequence[int], judges: Sequence[str]
    ) -> set[tuple[int, str]]:
        """The (job, judge) pairs among these that already have scores (not just an error)."""

    def qa_dimensions(self) -> list[str]:
        """Every dimension any judge has scored, sorted (the columns of a QA export)."""

    def iter_qa_rows(self, flt: JobFilter = ...) -> Iterator[dict[str, Any]]:
        """QA results of the matching jobs (default: all), one dict per (job, judge), streamed."""


class Stats(Protocol):
    """Totals and rates for the dashboard: counts, spend, throughput."""

    def status_totals(self) -> dict[str, int]:
        """Jobs per status over all queues, from job_counts."""

    def work_spend(self, qa_prefix: str) -> Spend:
        """What the jobs themselves spent, from job_counts, leaving out QA-batch queues."""

    def qa_spend(self) -> Spend:
        """What the QA judges spent (every stored verdict), from the trigger-kept total."""

    def finished_per_bucket(self, start: float, width: float, buckets: int) -> list[int]:
        """Jobs local workers finished (succeeded or failed) per `width`-second bucket."""

    def first_local_start(self, since: float, until: float) -> float | None:
        """When the first job a local worker finished in [since, until) started (or finished)."""

    def last_local_finish(self) -> float | None:
        """When a local worker last finished a job (one index seek)."""

    def local_pending_by_queue(self, now: float) -> dict[str, tuple[int, int]]:
        """(pending, of which waiting out a retry delay) per queue, local jobs only."""


class Tx(Protocol):
    """One transaction's view of the store: a repository per aggregate (read-only names)."""

    @property
    def jobs(self) -> Jobs: ...
    @property
    def queues(self) -> Queues: ...
    @property
    def events(self) -> Events: ...
    @property
    def workers(self) -> Workers: ...
    @property
    def batches(self) -> Batches: ...
    @property
    def items(self) -> BatchItems: ...
    @property
    def qa(self) -> QAResults: ...
    @property
    def stats(self) -> Stats: ...


class Store(Protocol):
    """Async access: each callable runs whole in one transaction, off the event loop.

    Every failure of the database underneath is a `DatabaseError` (a `StoreError`).
    """

    @property
    def location(self) -> DbLocation:
        """The database this store is open on."""

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function (no write transaction is opened)."""

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction (all or nothing), retried while the DB is busy."""

    async def close(self) -> None:
        """Close the store; pending calls finish first."""

    def bulk_writes(self) -> AbstractAsyncContextManager[None]:
        """A block of many large writes that the store may make cheaper (WAL checkpoints)."""

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait until another process makes a job claimable (True) or `timeout` passes.

        A back end without notifications (SQLite) waits out the timeout and says False:
        callers poll either way, notifications only make them quicker.
        """

    async def wait_for_change(self, timeout: float) -> bool:
        """Wait until another process commits any write (True) or `timeout` passes."""

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...


class SyncStore(Protocol):
    """Synchronous access, for the `--once` path, the CLI and tests."""

    @property
    def location(self) -> DbLocation:
        """The database this store is open on."""

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function."""

    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction (all or nothing), retried while the DB is busy."""

    def close(self) -> None:
        """Close the store."""

    def interrupt(self) -> None:
        """From another thread: abort the call in progress (DatabaseError there, rolled back)."""

    def __enter__(self) -> SyncStore: ...

    def __exit__(self, *exc: object) -> None: ...
