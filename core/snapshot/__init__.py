"""The read model behind the dashboard and `batchdash --once`: one module per pane.

The panes are `header` (overview), `job_rows`, `worker_rows` and `batch_rows`; this
module reads them all for one refresh (`snapshot`) or for `--once` (`summary`) and says
what needs attention. Every function takes a `Tx` (the store's repositories,
`core.db.ports`) and the current time (injected, so tests and screenshots can freeze the
clock) and returns plain dataclasses. They only read, through the indexed queries of the
store: counts come from `job_counts`, throughput from ranges of the `jobs_local_done`
index, spend from `job_counts` and `qa_totals`, jobs one page at a time. A whole refresh
is a handful of small queries, so it stays fast with a million jobs in the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from batchdash.core.budget import budget_note, budget_paused
from batchdash.core.db.ports import Page, Tx
from batchdash.core.models import BatchState, Job, JobFilter, JobStatus, QueueInfo
from batchdash.core.qa_models import QASummary
from batchdash.core.snapshot.batch_rows import (
    BatchDetail,
    BatchRow,
    batch_detail,
    batch_row,
    batches,
)
from batchdash.core.snapshot.header import Overview, overview
from batchdash.core.snapshot.job_rows import (
    DETAIL_TEXT_CHARS,
    ORDERS,
    JobDetail,
    JobPage,
    job_detail,
    job_page,
)
from batchdash.core.snapshot.worker_rows import WorkerRow, worker_health, workers

if TYPE_CHECKING:  # a name only here: `--once` never needs the rate limiter's module
    from batchdash.core.ratelimit import LimitStatus

__all__ = [
    "DETAIL_TEXT_CHARS",
    "ORDERS",
    "BatchDetail",
    "BatchRow",
    "JobDetail",
    "JobPage",
    "Overview",
    "Snapshot",
    "Summary",
    "View",
    "WorkerRow",
    "attention",
    "batch_detail",
    "batch_row",
    "batches",
    "cursor_job",
    "job_detail",
    "job_page",
    "jobs_pane",
    "jobs_pane_only",
    "overview",
    "qa",
    "qa_to_dict",
    "queues",
    "snapshot",
    "summary",
    "worker_health",
    "workers",
]

#: Failed batches and unhealthy workers older than this no longer need attention.
ATTENTION_WINDOW = 24 * 3600.0

_FAILED_BATCH_STATES = frozenset({BatchState.FAILED, BatchState.EXPIRED, BatchState.PARTIAL})


def queues(tx: Tx) -> list[QueueInfo]:
    """Every queue with its pause flag, counts per status, budget and spend."""
    return tx.queues.list_queues()


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
    #: A keyset page: the rows next to a row shown before (then `offset` is not used).
    page: Page | None = None
    #: That page's number as the reader turned to it (1 = the first), None if not known.
    page_number: int | None = None
    #: The job under the cursor, and the cursor's row (where it lands when that job left).
    job_id: int | None = None
    cursor: int = 0
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
    #: Every queue rate limit with its use and waits.
    limits: list[LimitStatus] = field(default_factory=list)


def snapshot(tx: Tx, view: View, now: float) -> Snapshot:
    """Read every pane for `view` (a few indexed queries and one page of rows).

    The detail is the job the table's cursor will be on (`cursor_job`), read in the same
    go, so a new page or filter shows its rows and their detail together.
    """
    worker_rows = workers(tx, now)
    head = overview(tx, now, worker_rows)
    page, detail = jobs_pane(tx, view, now, head.total)
    return Snapshot(
        now=now,
        overview=head,
        queues=queues(tx),
        page=page,
        detail=detail,
        workers=worker_rows,
        batches=batches(tx, now, view.batch_limit, view.batch_offset),
        batch=(
            None
            if view.batch_id is None
            else batch_detail(tx, view.batch_id, now, view.batch_outcome)
        ),
        qa=qa(tx) if view.with_qa else None,
        batch_total=tx.batches.count_batches(),
        limits=tx.limits.limit_status(now),
    )


def jobs_pane(tx: Tx, view: View, now: float, total: int) -> tuple[JobPage, JobDetail | None]:
    """The page of jobs for `view` and the detail of the job its cursor lands on."""
    page = job_page(
        tx,
        view.flt,
        order=view.order,
        offset=view.offset,
        limit=view.limit,
        total=total,
        page=view.page,
        number=view.page_number,
    )
    job_id = cursor_job(page.rows, view.job_id, view.cursor)
    return page, None if job_id is None else job_detail(tx, job_id, now)


def jobs_pane_only(tx: Tx, view: View, last: Snapshot) -> Snapshot:
    """`last` with the jobs pane read again for `view`: what a new filter, order or page
    needs when nothing was written since `last` was read (the rest of it still holds)."""
    page, detail = jobs_pane(tx, view, last.now, last.overview.total)
    return replace(last, page=page, detail=detail)


def cursor_job(rows: list[Job], job_id: int | None, cursor: int) -> int | None:
    """Where a table's cursor lands on `rows`: on `job_id` while it is shown, else on the
    row at index `cursor` (the last row if fewer); None on an empty page."""
    if any(job.id == job_id for job in rows):
        return job_id
    return rows[min(cursor, len(rows) - 1)].id if rows else None


# --------------------------------------------------------------------------- attention


def attention(
    head: Overview,
    batch_rows: list[BatchRow],
    worker_rows: list[WorkerRow],
    now: float,
    settled: set[int] | None = None,
    queue_rows: Sequence[QueueInfo] = (),
) -> list[str]:
    """What needs a human: failed jobs, queues their budget paused, recently failed
    batches, stale or dead workers.

    Batches and workers count only within ATTENTION_WINDOW, since nothing else clears
    them; a batch whose failures were all resubmitted (`settled`) no longer counts.
    """
    reasons: list[str] = []
    failed = head.counts.get(JobStatus.FAILED, 0)
    if failed:
        reasons.append(f"{failed:,} failed job{'s' if failed != 1 else ''}")
    reasons += [f"queue {q.name} paused: {budget_note(q)}" for q in queue_rows if budget_paused(q)]
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
    queue_rows = queues(tx)
    return Summary(
        now=now,
        overview=head,
        queues=queue_rows,
        batches=batch_rows,
        workers=worker_rows,
        qa=qa(tx),
        attention=attention(
            head,
            batch_rows,
            worker_rows,
            now,
            tx.batches.settled_batches(failed_batches),
            queue_rows,
        ),
    )
