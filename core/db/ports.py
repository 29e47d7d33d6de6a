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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from batchdash.core.db.location import DbLocation

if TYPE_CHECKING:  # annotations only: importing the store never builds these classes
    from batchdash.core.actor import Actor
    from batchdash.core.db.batch_ports import Batches, BatchItems
    from batchdash.core.db.limit_ports import Limits
    from batchdash.core.db.notice_ports import Notices
    from batchdash.core.db.prune_ports import Pruning
    from batchdash.core.db.stage_ports import Stages
    from batchdash.core.db.tag_ports import Tags
    from batchdash.core.models import (
        Claim,
        Event,
        HeartbeatReply,
        Job,
        JobFilter,
        NewJob,
        Outcome,
        QueueInfo,
        Spend,
        Worker,
    )
    from batchdash.core.qa_models import QAResult, QASummary

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """Where a keyset page starts: right after `job` in the page's order (right before
    it, in the same order, when `before`): the last or first row the reader was shown."""

    job: Job
    before: bool = False


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
        page: Page | None = None,
    ) -> list[Job]:
        """One page (or all, when `limit` is None) of jobs matching `flt` (default: all).

        With `page`, the `limit` rows right after (or before) its job in `order`, in `order`,
        instead of those from `offset`: a deep page costs what the first one does.
        """

    def iter_jobs(self, flt: JobFilter = ..., order: str = "id") -> Iterator[Job]:
        """Every job matching `flt` (default: all), streamed row by row (exports of any size)."""

    def get_job(self, job_id: int) -> Job:
        """The job with this id, or NotFoundError."""

    def get_job_head(self, job_id: int, chars: int) -> tuple[Job, dict[str, int]]:
        """The job with its error, payload and result each cut to `chars` characters."""

    def count_jobs_upto(
        self, flt: JobFilter, cap: int, *, ahead_of: Job | None = None, order: str = "id"
    ) -> tuple[int, bool]:
        """(count, exact): exact from job_counts when the filter allows, else counted to `cap`.

        With `ahead_of`, only the matching jobs in front of that one in `order` count.
        """

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

    def cancel(self, flt: JobFilter, now: float, actor: Actor | None = None) -> tuple[int, int]:
        """Cancel pending jobs at once and flag running ones; returns (cancelled, flagged).

        `actor` (who asked, from where) goes into each event's detail, as for every action.
        """

    def retry(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Put failed/cancelled local jobs back to pending with a fresh set of attempts."""

    def rescue(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Take back running jobs whose lease expired (their worker died or hung)."""

    def require_jobs(self, ids: Sequence[int]) -> None:
        """Raise NotFoundError naming the first id that does not exist."""

    def existing_job_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of these job ids exist."""


class Queues(Protocol):
    """Queues: creation, pause, budget, listing, QA rubric.

    A queue's spend is its jobs' cost plus its QA verdicts'; the store pauses a budgeted
    queue (reason "budget") in the very write whose cost makes the spend reach the budget.
    """

    def ensure_queue(self, name: str, now: float) -> None:
        """Create the queue if it does not exist yet."""

    def set_paused(self, queue: str, paused: bool, now: float, actor: Actor | None = None) -> None:
        """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown.

        Resuming a queue whose spend reached its budget raises BudgetError."""

    def set_budget(self, queue: str, usd: float | None, now: float) -> QueueInfo:
        """Set (None: clear) a queue's budget in USD; a budget at or below the spend pauses
        it (reason "budget"), a higher one or none resumes a budget pause. The queue now."""

    def get_queue(self, name: str) -> QueueInfo:
        """One queue with its counts, budget and spend; NotFoundError if unknown."""

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its pause flag, job counts per status, budget and spend."""

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

    def request_stop(
        self, worker_ids: Sequence[str], now: float, actor: Actor | None = None
    ) -> list[str]:
        """Ask live workers to drain and stop at their next heartbeat; returns those asked.

        Each one asked gets a `stop_requested` event naming `actor`.
        """


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

    def clock(self, now: float) -> float:
        """The time to judge stored times by (heartbeat ages, staleness): the caller's `now`
        where the callers' clocks wrote them (SQLite), the server's where it did (PostgreSQL)."""

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
    @property
    def notices(self) -> Notices: ...
    @property
    def stages(self) -> Stages: ...
    @property
    def tags(self) -> Tags: ...
    @property
    def prune(self) -> Pruning: ...
    @property
    def limits(self) -> Limits: ...


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

    async def change_token(self) -> object:
        """A cheap value that differs after any write committed since it was last read (by
        any process, this one too); None when the back end cannot tell."""

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
