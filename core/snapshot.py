"""The read model behind the dashboard and `batchdash --once`: one function per pane.

Every function takes a `Tx` (the store's repositories, `core.db.ports`) and the current
time (injected, so tests and screenshots can freeze the clock) and returns plain
dataclasses. They only read, through the indexed queries of the store: counts come from
`job_counts`, throughput from ranges of the `jobs_local_done` index, spend from
`job_counts` and `qa_totals`, jobs one page at a time. A whole refresh is a handful of
small queries, so it stays fast with a million jobs in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.liveness import STALE_AFTER_INTERVALS, pid_alive, this_host
from batchdash.core.models import (
    ACTIVE_BATCH_STATES,
    ALL_JOBS,
    QA_QUEUE_PREFIX,
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
    Spend,
    Worker,
    WorkerState,
)

#: The sparkline covers this many buckets of this many seconds (15 minutes).
THROUGHPUT_BUCKETS = 30
BUCKET_SECONDS = 30.0
#: The rate behind the ETA looks at the last this-many buckets (5 minutes).
RATE_BUCKETS = 10
#: This many empty buckets in a row end a stretch of work: the rate restarts after them.
GAP_BUCKETS = 2
#: With nothing running and no local finish for this long, the workers are idle.
IDLE_AFTER = 30.0
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
    """The header: jobs per state, local throughput and ETA, tokens and spend.

    `rate_per_minute` counts only jobs local workers finished, over the time work was being
    done in the last RATE_BUCKETS buckets (None before the first such job). `eta_seconds`
    covers local jobs a live worker can claim; `stalled` local pending jobs cannot be
    claimed (`eta_note` says why: no live worker, or their queue is paused). Remote-batch
    lines are not in either: their batch has its own progress and ETA (BatchRow).
    """

    counts: dict[str, int]
    retrying: int
    throughput: list[int]
    bucket_seconds: float
    rate_per_minute: float | None
    idle: bool
    eta_seconds: float | None
    eta_note: str | None
    stalled: int
    stall_reason: str | None
    work: Spend
    qa: Spend

    @property
    def total(self) -> int:
        """All jobs in the store."""
        return sum(self.counts.values())

    @property
    def window_seconds(self) -> float:
        """How far back the sparkline reaches."""
        return self.bucket_seconds * len(self.throughput)

    @property
    def total_cost(self) -> float:
        """Work and QA spend together."""
        return self.work.cost + self.qa.cost

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (`cost` is the work spend, as it always was)."""
        rate = self.rate_per_minute
        return {
            "total": self.total,
            "by_status": self.counts,
            "retrying": self.retrying,
            "stalled": self.stalled,
            "stall_reason": self.stall_reason,
            "throughput_per_minute": None if rate is None else round(rate, 2),
            "idle": self.idle,
            "throughput_buckets": self.throughput,
            "bucket_seconds": self.bucket_seconds,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "eta_note": self.eta_note,
            "input_tokens": self.work.input_tokens,
            "output_tokens": self.work.output_tokens,
            "cost": round(self.work.cost, 6),
            "qa_input_tokens": self.qa.input_tokens,
            "qa_output_tokens": self.qa.output_tokens,
            "qa_cost": round(self.qa.cost, 6),
            "total_cost": round(self.total_cost, 6),
        }


def overview(tx: Tx, now: float, worker_rows: list[WorkerRow] | None = None) -> Overview:
    """Counts (job_counts), local throughput (jobs_local_done index), ETA and spend."""
    counts = {s.value: 0 for s in JobStatus} | tx.stats.status_totals()
    start = now - BUCKET_SECONDS * THROUGHPUT_BUCKETS
    buckets = tx.stats.finished_per_bucket(start, BUCKET_SECONDS, THROUGHPUT_BUCKETS)
    running = counts[JobStatus.RUNNING]  # only local jobs run: batch lines stay pending
    last = tx.stats.last_local_finish()
    idle = not running and (last is None or now - last > IDLE_AFTER)
    rate = 0.0 if idle else local_rate(tx, now, buckets[-RATE_BUCKETS:])
    pending = tx.stats.local_pending_by_queue(now)
    rows = workers(tx, now) if worker_rows is None else worker_rows
    backlog = _backlog(pending, running, tx.queues.list_queues(), rows)
    return Overview(
        counts=counts,
        retrying=sum(retrying for _, retrying in pending.values()),
        throughput=buckets,
        bucket_seconds=BUCKET_SECONDS,
        rate_per_minute=rate,
        idle=idle,
        eta_seconds=_eta(backlog, rate),
        eta_note=_eta_note(backlog, idle, rate),
        stalled=backlog.stalled,
        stall_reason=backlog.reason,
        work=tx.stats.work_spend(QA_QUEUE_PREFIX),
        qa=tx.stats.qa_spend(),
    )


def local_rate(tx: Tx, now: float, window: list[int]) -> float | None:
    """Jobs per minute local workers finished over the time they were working, or None.

    The stretch of work is what follows the last GAP_BUCKETS empty buckets of `window`
    (the last buckets before `now`); it is timed from when its first finished job started,
    not from the window's edge, so a run that began 30 s ago is not divided by 5 minutes.
    """
    stretch = 0
    empty = 0
    for i, n in enumerate(window):
        if n and empty >= GAP_BUCKETS:
            stretch = i
        empty = 0 if n else empty + 1
    done = sum(window[stretch:])
    if not done:
        return None
    window_start = now - BUCKET_SECONDS * len(window)
    began = tx.stats.first_local_start(window_start + BUCKET_SECONDS * stretch, now)
    span = now - max(window_start, began if began is not None else window_start)
    return done / span * 60.0 if span > 0 else None


@dataclass(frozen=True, slots=True)
class _Backlog:
    waiting: int
    stalled: int
    reason: str | None


def _backlog(
    pending: dict[str, tuple[int, int]],
    running: int,
    queue_rows: list[QueueInfo],
    worker_rows: list[WorkerRow],
) -> _Backlog:
    """Local jobs some live worker can claim (or holds), and those none can, with why."""
    # A draining worker finishes what it holds but claims nothing new.
    live = [
        w.worker
        for w in worker_rows
        if w.health in ("ok", "late") and w.worker.state != WorkerState.DRAINING
    ]
    paused = {q.name for q in queue_rows if q.paused}

    def served(queue: str) -> bool:
        return queue not in paused and any(not w.queues or queue in w.queues for w in live)

    waiting = sum(n for q, (n, _) in pending.items() if served(q)) + (running if live else 0)
    stalled = sum(n for q, (n, _) in pending.items() if not served(q)) + (0 if live else running)
    if not stalled:
        return _Backlog(waiting, 0, None)
    in_paused = sum(n for q, (n, _) in pending.items() if q in paused)
    reason = "queue paused" if live and in_paused == stalled else "no live worker"
    return _Backlog(waiting, stalled, reason)


def _eta_note(backlog: _Backlog, idle: bool, rate: float | None) -> str | None:
    """Why there is no ETA: nothing can claim the jobs, nothing is being done, or no rate."""
    if not backlog.waiting:
        return backlog.reason
    if idle:
        return "idle"
    return None if rate else "unknown"


def _eta(backlog: _Backlog, rate: float | None) -> float | None:
    """Seconds until the claimable local jobs are done: 0 when none, None when unknown.

    Jobs nothing can claim never finish: with only those left there is no ETA at all.
    """
    if not backlog.waiting:
        return None if backlog.stalled else 0.0
    return backlog.waiting / rate * 60.0 if rate else None


def queues(tx: Tx) -> list[QueueInfo]:
    """Every queue with its pause flag and counts per status."""
    return tx.queues.list_queues()


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
    tx: Tx,
    flt: JobFilter,
    *,
    order: str = "-id",
    offset: int = 0,
    limit: int = 100,
    total: int | None = None,
) -> JobPage:
    """One page of jobs matching `flt` (LIMIT/OFFSET), with a count capped at COUNT_CAP."""
    matching, exact = tx.jobs.count_jobs_upto(flt, COUNT_CAP)
    if total is None:
        total = tx.jobs.count_jobs(ALL_JOBS)
    if matching and offset >= matching and exact:
        offset = max(0, (matching - 1) // limit * limit)  # the list shrank under the cursor
    rows = tx.jobs.list_jobs(flt, limit=limit, offset=offset, order=order, with_bodies=False)
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


def job_detail(tx: Tx, job_id: int, now: float) -> JobDetail | None:
    """One job with its timeline, QA verdicts and batch; None if it no longer exists."""
    try:
        job, cut = tx.jobs.get_job_head(job_id, DETAIL_TEXT_CHARS)
    except NotFoundError:
        return None
    events = tx.events.list_events(job_id)[-DETAIL_EVENTS:]
    batch = None
    if job.batch_id is not None:
        try:
            batch = tx.batches.get_batch(job.batch_id)
        except NotFoundError:
            batch = None
    retry_at = job.run_after if job.status == JobStatus.PENDING and job.run_after > now else None
    qa = tx.qa.qa_results_for_job(job_id)
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


def workers(tx: Tx, now: float) -> list[WorkerRow]:
    """Every worker, latest heartbeat first, with its health."""
    host = this_host()
    return [
        WorkerRow(w, w.heartbeat_age(now), worker_health(w, now, host))
        for w in tx.workers.list_workers()
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


# --------------------------------------------------------------------------- QA


def qa(tx: Tx) -> QASummary:
    """Per judge and dimension averages, distribution, worst jobs, disagreeing judges."""
    return tx.qa.qa_summary()


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
    batch_offset: int = 0
    batch_limit: int = 50


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
    #: Every tracked batch (`batches` is one page of them, from `View.batch_offset`).
    batch_total: int = 0


def snapshot(tx: Tx, view: View, now: float) -> Snapshot:
    """Read every pane for `view` (a few indexed queries and one page of rows).

    Without a selected job the detail is the first row's, so the first paint is complete.
    """
    worker_rows = workers(tx, now)
    head = overview(tx, now, worker_rows)
    page = job_page(
        tx, view.flt, order=view.order, offset=view.offset, limit=view.limit, total=head.total
    )
    # Until the user moves the cursor, the detail pane shows the first row.
    job_id = view.job_id if view.job_id is not None else (page.rows[0].id if page.rows else None)
    return Snapshot(
        now=now,
        overview=head,
        queues=queues(tx),
        page=page,
        detail=None if job_id is None else job_detail(tx, job_id, now),
        workers=worker_rows,
        batches=batches(tx, now, view.batch_limit, view.batch_offset),
        batch=(
            None
            if view.batch_id is None
            else batch_detail(tx, view.batch_id, now, view.batch_outcome)
        ),
        qa=qa(tx) if view.with_qa else None,
        batch_total=tx.batches.count_batches(),
    )


# --------------------------------------------------------------------------- attention


def attention(
    head: Overview,
    batch_rows: list[BatchRow],
    worker_rows: list[WorkerRow],
    now: float,
    settled: set[int] | None = None,
) -> list[str]:
    """What needs a human: failed jobs, recently failed batches, stale or dead workers.

    Batches and workers count only within ATTENTION_WINDOW, since nothing else clears
    them; a batch whose failures were all resubmitted (`settled`) no longer counts.
    """
    reasons: list[str] = []
    failed = head.counts.get(JobStatus.FAILED, 0)
    if failed:
        reasons.append(f"{failed:,} failed job{'s' if failed != 1 else ''}")
    for row in batch_rows:
        b = row.batch
        if b.id in (settled or set()):
            continue
        if b.state in _FAILED_BATCH_STATES and now - b.updated_at <= ATTENTION_WINDOW:
            reasons.append(f"batch {b.id} {b.state}")
        if b.unreachable_since is not None and b.ingested_at is None:
            # Polling it keeps failing (bad key, unknown at its endpoint, network): it will
            # never finish on its own.
            reasons.append(f"batch {b.id} unreachable: {(b.poll_error or '?')[:80]}")
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


def summary(tx: Tx, now: float) -> Summary:
    """Overview, queues, active and recent batches, workers, QA and what needs attention."""
    worker_rows = workers(tx, now)
    head = overview(tx, now, worker_rows)
    active = tx.batches.list_batches(active_only=True)
    seen = {b.id for b in active}
    recent = [b for b in tx.batches.list_batches(limit=RECENT_BATCHES) if b.id not in seen]
    batch_rows = [batch_row(b, now) for b in active + recent]
    failed_batches = [r.batch.id for r in batch_rows if r.batch.state in _FAILED_BATCH_STATES]
    return Summary(
        now=now,
        overview=head,
        queues=queues(tx),
        batches=batch_rows,
        workers=worker_rows,
        qa=qa(tx),
        attention=attention(
            head, batch_rows, worker_rows, now, tx.batches.settled_batches(failed_batches)
        ),
    )
