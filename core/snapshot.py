"""The read model behind the dashboard and `batchdash --once`: one function per pane.

Every function takes a `sqlite3.Connection` and the current time (injected, so tests and
screenshots can freeze the clock) and returns plain dataclasses. They only read, through
the indexed queries in `core.store`: counts come from `job_counts`, throughput from a range
of the `jobs_finished` index, jobs one page at a time. A whole refresh is a handful of
small queries, so it stays fast with a million jobs in the store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from core import store
from core.liveness import STALE_AFTER_INTERVALS, pid_alive, this_host
from core.models import (
    Batch,
    BatchItem,
    BatchState,
    Event,
    Job,
    JobFilter,
    JobStatus,
    QAResult,
    QASummary,
    QueueInfo,
    Worker,
    WorkerState,
)

#: The sparkline covers this many buckets of this many seconds (15 minutes).
THROUGHPUT_BUCKETS = 30
BUCKET_SECONDS = 30.0
#: The rate behind the ETA is taken over the last this-many buckets (5 minutes).
RATE_BUCKETS = 10
#: A heartbeat older than this many intervals is "late" (yellow) before it is stale (red).
LATE_AFTER_INTERVALS = 1.5
#: Failed batches and unhealthy workers older than this no longer need attention.
ATTENTION_WINDOW = 24 * 3600.0
#: A filtered count stops here ("10,000+ of …") instead of scanning the whole table.
COUNT_CAP = 10_000

#: Sort orders offered by the queue pane, in the order `o` cycles through them.
ORDERS = {
    "-id": "newest",
    "-updated": "recently updated",
    "key": "queue, key",
    "attempts": "most attempts",
    "status": "status, oldest first",
}

_FAILED_BATCH_STATES = frozenset({BatchState.FAILED, BatchState.EXPIRED, BatchState.PARTIAL})


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True, slots=True)
class Overview:
    """The header: jobs per state, throughput, ETA for what is pending, tokens and cost."""

    counts: dict[str, int]
    retrying: int
    throughput: list[int]
    bucket_seconds: float
    rate_per_minute: float
    eta_seconds: float | None
    input_tokens: int
    output_tokens: int
    cost: float

    @property
    def total(self) -> int:
        """All jobs in the store."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys."""
        return {
            "total": self.total,
            "by_status": self.counts,
            "retrying": self.retrying,
            "throughput_per_minute": round(self.rate_per_minute, 2),
            "throughput_buckets": self.throughput,
            "bucket_seconds": self.bucket_seconds,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": round(self.cost, 6),
        }


def overview(conn: sqlite3.Connection, now: float) -> Overview:
    """Counts per status (job_counts), throughput buckets (jobs_finished index) and ETA."""
    totals = store.status_totals(conn)
    counts = {s.value: totals.get(s.value, (0, 0, 0, 0.0))[0] for s in JobStatus}
    start = now - BUCKET_SECONDS * THROUGHPUT_BUCKETS
    buckets = store.finished_per_bucket(conn, start, BUCKET_SECONDS, THROUGHPUT_BUCKETS)
    recent = sum(buckets[-RATE_BUCKETS:])
    rate = recent / (RATE_BUCKETS * BUCKET_SECONDS / 60.0)
    waiting = counts[JobStatus.PENDING] + counts[JobStatus.RUNNING]
    eta = waiting / rate * 60.0 if waiting and rate > 0 else (0.0 if not waiting else None)
    return Overview(
        counts=counts,
        retrying=store.retrying_count(conn, now) if counts[JobStatus.PENDING] else 0,
        throughput=buckets,
        bucket_seconds=BUCKET_SECONDS,
        rate_per_minute=rate,
        eta_seconds=eta,
        input_tokens=sum(t[1] for t in totals.values()),
        output_tokens=sum(t[2] for t in totals.values()),
        cost=sum(t[3] for t in totals.values()),
    )


def queues(conn: sqlite3.Connection) -> list[QueueInfo]:
    """Every queue with its pause flag and counts per status."""
    return store.list_queues(conn)


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of the queue pane: rows plus what "N of M" needs."""

    rows: list[Job]
    offset: int
    limit: int
    matching: int
    exact: bool
    total: int
    order: str

    @property
    def matching_text(self) -> str:
        """`1,234` or `10,000+` when the count stopped at the cap."""
        return f"{self.matching:,}" + ("" if self.exact else "+")


def job_page(
    conn: sqlite3.Connection,
    flt: JobFilter,
    *,
    order: str = "-id",
    offset: int = 0,
    limit: int = 100,
    total: int | None = None,
) -> JobPage:
    """One page of jobs matching `flt` (LIMIT/OFFSET), with a count capped at COUNT_CAP."""
    matching, exact = store.count_jobs_upto(conn, flt, COUNT_CAP)
    if total is None:
        total = store.count_jobs(conn, store.ALL_JOBS)
    if matching and offset >= matching and exact:
        offset = max(0, (matching - 1) // limit * limit)  # the list shrank under the cursor
    rows = store.list_jobs(conn, flt, limit=limit, offset=offset, order=order, with_bodies=False)
    return JobPage(rows, offset, limit, matching, exact, total, order)


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Everything the job detail pane shows about one job."""

    job: Job
    events: list[Event]
    qa: list[QAResult]
    batch: Batch | None
    next_retry_at: float | None
    #: Full size in bytes of each of the job's texts (error, payload, result) that was cut
    #: to DETAIL_TEXT_CHARS for the view.
    cut: dict[str, int] = field(default_factory=dict)


#: The timeline keeps the latest this-many events of a job.
DETAIL_EVENTS = 200
#: Characters of a job's error, payload and result the detail reads (and shows); a
#: multi-megabyte text would otherwise be read and drawn again on every key press.
DETAIL_TEXT_CHARS = 20_000


def job_detail(conn: sqlite3.Connection, job_id: int, now: float) -> JobDetail | None:
    """One job with its timeline, QA verdicts and batch; None if it no longer exists."""
    try:
        job, cut = store.get_job_head(conn, job_id, DETAIL_TEXT_CHARS)
    except store.NotFoundError:
        return None
    events = store.list_events(conn, job_id)[-DETAIL_EVENTS:]
    batch = None
    if job.batch_id is not None:
        try:
            batch = store.get_batch(conn, job.batch_id)
        except store.NotFoundError:
            batch = None
    retry_at = job.run_after if job.status == JobStatus.PENDING and job.run_after > now else None
    qa = store.qa_results_for_job(conn, job_id)
    return JobDetail(job, events, qa, batch, retry_at, cut)


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A worker with its heartbeat age and health: ok, late, stale, dead or stopped."""

    worker: Worker
    age: float
    health: str

    @property
    def needs_attention(self) -> bool:
        """Stale or dead (a stopped worker shut down cleanly)."""
        return self.health in (WorkerState.STALE, WorkerState.DEAD)

    def to_dict(self, now: float) -> dict[str, Any]:
        """The worker's JSON dict plus its health."""
        return {**self.worker.to_dict(now), "health": self.health}


def worker_health(worker: Worker, now: float, host: str) -> str:
    """Health from the heartbeat age in units of the worker's own heartbeat interval.

    A live-looking worker on this host whose pid is gone is dead; the thresholds follow
    the worker's own stale rule (STALE_AFTER_INTERVALS), so the colours mean the same thing
    as the state the workers write.
    """
    # Imported here: core.worker pulls in handlers and QA, which `--once` rarely needs.

    if worker.state in (WorkerState.STOPPED, WorkerState.DEAD):
        return worker.state
    if worker.host == host and not pid_alive(worker.pid):
        return WorkerState.DEAD
    intervals = worker.heartbeat_age(now) / max(worker.heartbeat_interval, 1e-9)
    if worker.state == WorkerState.STALE or intervals > STALE_AFTER_INTERVALS:
        return WorkerState.STALE
    return "late" if intervals > LATE_AFTER_INTERVALS else "ok"


def workers(conn: sqlite3.Connection, now: float) -> list[WorkerRow]:
    """Every worker, latest heartbeat first, with its health."""
    host = this_host()
    return [
        WorkerRow(w, w.heartbeat_age(now), worker_health(w, now, host))
        for w in store.list_workers(conn)
    ]


# --------------------------------------------------------------------------- batches


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
            "created_at": b.created_at,
            "expires_at": b.expires_at,
            "input_file_id": b.input_file_id,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "errors": b.errors,
            "poll_error": b.poll_error,
            "cost": b.cost,
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


def batch_row(batch: Batch, now: float) -> BatchRow:
    """A batch with its progress fraction (from request counts) and timing."""
    done = batch.completed + batch.failed
    progress = done / batch.total if batch.total else 0.0
    timing, seconds = batch_timing(batch, now)
    return BatchRow(batch, min(1.0, progress), timing, seconds)


def batches(conn: sqlite3.Connection, now: float, limit: int = 50) -> list[BatchRow]:
    """Active batches first, then the most recent ones, up to `limit` in all."""
    active = store.list_batches(conn, active_only=True, limit=limit)
    seen = {b.id for b in active}
    recent = [b for b in store.list_batches(conn, limit=limit) if b.id not in seen]
    return [batch_row(b, now) for b in (active + recent)[:limit]]


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """One batch with its items of one outcome (a page), outcome counts and events."""

    row: BatchRow
    outcomes: dict[str, int]
    outcome: str | None
    items: list[BatchItem]
    events: list[Event]


def batch_detail(
    conn: sqlite3.Connection,
    batch_id: int,
    now: float,
    outcome: str | None = None,
    limit: int = 200,
) -> BatchDetail | None:
    """A batch's detail; `outcome` narrows the items shown. None if it no longer exists."""
    try:
        batch = store.get_batch(conn, batch_id)
    except store.NotFoundError:
        return None
    items = store.list_batch_items(
        conn, batch_id, outcomes=(outcome,) if outcome else (), limit=limit
    )
    return BatchDetail(
        row=batch_row(batch, now),
        outcomes=store.batch_outcome_counts(conn, batch_id),
        outcome=outcome,
        items=items,
        events=store.batch_events(conn, batch_id),
    )


# --------------------------------------------------------------------------- QA


def qa(conn: sqlite3.Connection) -> QASummary:
    """Per judge and dimension averages, distribution, worst jobs, disagreeing judges."""
    return store.qa_summary(conn)


def qa_to_dict(summary: QASummary) -> dict[str, Any]:
    """A QA summary as JSON-ready data with stable keys."""
    return {
        "results": summary.results,
        "errors": summary.errors,
        "stats": [
            {
                "judge": s.judge,
                "dimension": s.dimension,
                "n": s.n,
                "mean": round(s.mean, 3),
                "min": s.minimum,
                "max": s.maximum,
            }
            for s in summary.stats
        ],
        "distribution": {str(k): v for k, v in sorted(summary.distribution.items())},
        "worst": [
            {"job_id": j, "key": k, "judge": judge, "overall": o}
            for j, k, judge, o in summary.worst
        ],
        "disagreements": [
            {"job_id": j, "key": k, "low": lo, "high": hi} for j, k, lo, hi in summary.disagreements
        ],
    }


# --------------------------------------------------------------------------- whole views


@dataclass(frozen=True, slots=True)
class View:
    """What the dashboard is looking at: filter, sort, page, selected job and batch."""

    flt: JobFilter = field(default_factory=JobFilter)
    order: str = "-id"
    offset: int = 0
    limit: int = 100
    job_id: int | None = None
    batch_id: int | None = None
    batch_outcome: str | None = None
    with_qa: bool = True


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one dashboard refresh shows, read in one go on one connection."""

    now: float
    overview: Overview
    queues: list[QueueInfo]
    page: JobPage
    detail: JobDetail | None
    workers: list[WorkerRow]
    batches: list[BatchRow]
    batch: BatchDetail | None
    qa: QASummary | None


def snapshot(conn: sqlite3.Connection, view: View, now: float) -> Snapshot:
    """Read every pane for `view` (a few indexed queries and one page of rows).

    Without a selected job the detail is the first row's, so the first paint is complete.
    """
    head = overview(conn, now)
    page = job_page(
        conn, view.flt, order=view.order, offset=view.offset, limit=view.limit, total=head.total
    )
    # Until the user moves the cursor, the detail pane shows the first row.
    job_id = view.job_id if view.job_id is not None else (page.rows[0].id if page.rows else None)
    return Snapshot(
        now=now,
        overview=head,
        queues=queues(conn),
        page=page,
        detail=None if job_id is None else job_detail(conn, job_id, now),
        workers=workers(conn, now),
        batches=batches(conn, now),
        batch=(
            None
            if view.batch_id is None
            else batch_detail(conn, view.batch_id, now, view.batch_outcome)
        ),
        qa=qa(conn) if view.with_qa else None,
    )


# --------------------------------------------------------------------------- attention


def attention(
    head: Overview, batch_rows: list[BatchRow], worker_rows: list[WorkerRow], now: float
) -> list[str]:
    """What needs a human: failed jobs, recently failed batches, stale or dead workers.

    Batches and workers count only within ATTENTION_WINDOW, since nothing clears them.
    """
    reasons: list[str] = []
    failed = head.counts.get(JobStatus.FAILED, 0)
    if failed:
        reasons.append(f"{failed:,} failed job{'s' if failed != 1 else ''}")
    for row in batch_rows:
        b = row.batch
        if b.state in _FAILED_BATCH_STATES and now - b.updated_at <= ATTENTION_WINDOW:
            reasons.append(f"batch {b.id} {b.state}")
    for w in worker_rows:
        if w.needs_attention and now - w.worker.heartbeat_at <= ATTENTION_WINDOW:
            reasons.append(f"worker {w.worker.id} {w.health}")
    return reasons


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True, slots=True)
class Summary:
    """What `batchdash --once` reports: the whole picture without pages or details."""

    now: float
    overview: Overview
    queues: list[QueueInfo]
    batches: list[BatchRow]
    workers: list[WorkerRow]
    qa: QASummary
    attention: list[str]


#: `--once` lists every active batch and this many recent finished ones.
RECENT_BATCHES = 10


def summary(conn: sqlite3.Connection, now: float) -> Summary:
    """Overview, queues, active and recent batches, workers, QA and what needs attention."""
    head = overview(conn, now)
    active = store.list_batches(conn, active_only=True)
    seen = {b.id for b in active}
    recent = [b for b in store.list_batches(conn, limit=RECENT_BATCHES) if b.id not in seen]
    batch_rows = [batch_row(b, now) for b in active + recent]
    worker_rows = workers(conn, now)
    return Summary(
        now=now,
        overview=head,
        queues=queues(conn),
        batches=batch_rows,
        workers=worker_rows,
        qa=qa(conn),
        attention=attention(head, batch_rows, worker_rows, now),
    )
