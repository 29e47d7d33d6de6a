"""The header pane: jobs per state, local throughput and ETA, tokens and spend.

Counts come from `job_counts`, throughput from ranges of the `jobs_local_done` index,
spend from `job_counts` and `qa_totals`: a few small queries at any size of store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.models import (
    QA_QUEUE_PREFIX,
    JobStatus,
    QueueInfo,
    Spend,
    WorkerState,
)
from batchdash.core.snapshot.worker_rows import WorkerRow, workers

#: The sparkline covers this many buckets of this many seconds (15 minutes).
THROUGHPUT_BUCKETS = 30
BUCKET_SECONDS = 30.0
#: The rate behind the ETA looks at the last this-many buckets (5 minutes).
RATE_BUCKETS = 10
#: This many empty buckets in a row end a stretch of work: the rate restarts after them.
GAP_BUCKETS = 2
#: With nothing running and no local finish for this long, the workers are idle.
IDLE_AFTER = 30.0


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
