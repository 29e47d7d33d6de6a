"""Notices: what happened that someone should hear about, read from the store.

A notice is a batch that ended (any terminal state), a queue whose failed jobs passed a
threshold, a queue its budget paused, or a worker gone stale or dead. Each has a stable
id (`batch:42:failed`, `queue:papers:failed:20`, `worker:w1:stale:1732870000`), so a
channel that remembers the ids it sent (`Tx.notices`) delivers each once, and the
dashboard toasts each once.

Detection is a list of small functions (`DETECTORS`), each `(tx, now, since, rules) ->
notices`: adding a kind of notice is adding one function. States (failures, budgets,
workers) are read as they are now; batch endings are read from `since` on (a week back at
most), so a read stays small however many batches the store keeps. Everything here reads;
nothing is sent from here (delivery lives with the command line and the dashboard).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchdash.core import config
from batchdash.core.budget import budget_note, budget_paused
from batchdash.core.db.ports import Tx
from batchdash.core.models import Batch, BatchState, JobStatus
from batchdash.core.snapshot.worker_rows import workers

#: `notify_failures` when the config file says nothing: notify at 10 failed jobs in a queue.
DEFAULT_FAILURES = 10
#: Batch endings looked at per read, the latest ones (more at once than this: the oldest
#: of them are not told).
ENDED_BATCHES = 1000
#: How far back `poll` looks for batch endings: one stopped longer misses older ones.
LOOKBACK = 7 * 24 * 3600.0
#: Version of the notice JSON; changes only when a key is renamed, removed or changes meaning.
NOTICE_SCHEMA_VERSION = 1

#: Severities, named as Textual's toasts name them.
INFO, WARNING, ERROR = "information", "warning", "error"

_BATCH_SEVERITY: dict[str, str] = {
    BatchState.SUCCEEDED: INFO,
    BatchState.PARTIAL: WARNING,
    BatchState.CANCELLED: WARNING,
    BatchState.EXPIRED: ERROR,
    BatchState.FAILED: ERROR,
}


@dataclass(frozen=True, slots=True)
class NoticeRules:
    """What counts as notice-worthy: `failures` failed jobs in a queue (0: never)."""

    failures: int = DEFAULT_FAILURES


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell: its stable id, kind, severity, a title and a one-line message.

    `subject` names what it is about (`batch`, `queue`, `worker`) and `data` describes it.
    """

    id: str
    kind: str
    severity: str
    title: str
    message: str
    at: float
    subject: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self, db: str) -> dict[str, Any]:
        """The JSON a `--notify` command reads on stdin and a `--webhook` receives.

        `id` is stable: a receiver that may see a notice twice (after a crash between
        sending and recording it) dedupes by it.
        """
        return {
            "schema_version": NOTICE_SCHEMA_VERSION,
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "at": self.at,
            "db": db,
            self.subject: self.data,
        }


#: A detector: `(tx, now, since, rules)` → the notices true now. `since` bounds how far
#: back events (batch endings) are looked for; states (failures, workers) are read as now.
Detector = Callable[[Tx, float, float, NoticeRules], list[Notice]]


def rules_from_config() -> NoticeRules:
    """The rules the config file sets (`notify_failures`), defaults elsewhere."""
    failures = config.file_settings().notify_failures
    return NoticeRules(failures=DEFAULT_FAILURES if failures is None else failures)


def ended_batches(tx: Tx, now: float, since: float, rules: NoticeRules) -> list[Notice]:
    """A batch reached a terminal state and its results are in (so its counts are final)."""
    return [_batch_notice(b) for b in tx.notices.ended_batches(since, ENDED_BATCHES)]


def _batch_notice(b: Batch) -> Notice:
    ended = max(
        (t for t in (b.completed_at, b.failed_at, b.expired_at, b.cancelled_at) if t),
        default=b.ingested_at or b.updated_at,
    )
    lines = f"{b.completed} ok, {b.failed} failed of {b.total}"
    return Notice(
        id=f"batch:{b.id}:{b.state}",
        kind="batch_ended",
        severity=_BATCH_SEVERITY.get(b.state, WARNING),
        title=f"batch {b.id} {b.state}",
        message=f"batch {b.id} ({b.provider}, queue {b.queue}) {b.state}: {lines}",
        at=ended,
        subject="batch",
        data={
            "id": b.id,
            "remote_id": b.remote_id,
            "provider": b.provider,
            "queue": b.queue,
            "state": b.state,
            "raw_status": b.raw_status,
            "total": b.total,
            "completed": b.completed,
            "failed": b.failed,
        },
    )


def failing_queues(tx: Tx, now: float, since: float, rules: NoticeRules) -> list[Notice]:
    """A queue's failed jobs reached the threshold, then each doubling of it (10, 20, 40…):
    a long run of failures is a few notices, not one per failure."""
    if rules.failures <= 0:
        return []
    found = []
    for q in tx.queues.list_queues():
        failed = q.counts.get(JobStatus.FAILED, 0)
        if failed < rules.failures:
            continue
        level = rules.failures
        while level * 2 <= failed:
            level *= 2
        found.append(
            Notice(
                id=f"queue:{q.name}:failed:{level}",
                kind="queue_failures",
                severity=ERROR,
                title=f"queue {q.name}: {failed} failed",
                message=f"queue {q.name} has {failed} failed jobs (notified at {level})",
                at=now,
                subject="queue",
                data={"name": q.name, "failed": failed, "threshold": level},
            )
        )
    return found


def troubled_workers(tx: Tx, now: float, since: float, rules: NoticeRules) -> list[Notice]:
    """A worker went stale (no heartbeat for 3 intervals) or died; its id carries the last
    heartbeat, so a worker that recovers and goes stale again is a new notice."""
    found = []
    for row in workers(tx, now):
        if not row.needs_attention:
            continue
        w = row.worker
        found.append(
            Notice(
                id=f"worker:{w.id}:{row.health}:{int(w.heartbeat_at)}",
                kind=f"worker_{row.health}",
                severity=ERROR if row.health == "dead" else WARNING,
                title=f"worker {w.id} {row.health}",
                message=f"worker {w.id} on {w.host} (pid {w.pid}) is {row.health}, "
                f"last heartbeat {row.age:.0f}s ago",
                at=w.heartbeat_at,
                subject="worker",
                data={"id": w.id, "host": w.host, "pid": w.pid, "health": row.health},
            )
        )
    return found


def spent_budgets(tx: Tx, now: float, since: float, rules: NoticeRules) -> list[Notice]:
    """A queue's budget paused it; its id carries the budget, so a raised budget that is
    reached again is a new notice."""
    return [
        Notice(
            id=f"queue:{q.name}:budget:{q.budget_usd}",
            kind="budget_reached",
            severity=ERROR,
            title=f"queue {q.name}: budget reached",
            message=f"queue {q.name} paused: {budget_note(q)}",
            at=now,
            subject="queue",
            data={"name": q.name, "budget_usd": q.budget_usd, "spend_usd": q.spend_usd},
        )
        for q in tx.queues.list_queues()
        if budget_paused(q)
    ]


#: Every detector, in the order their notices are delivered.
DETECTORS: Sequence[Detector] = (ended_batches, failing_queues, spent_budgets, troubled_workers)


def detect(tx: Tx, now: float, rules: NoticeRules, since: float | None = None) -> list[Notice]:
    """Every notice that is true now, oldest first (a channel sends what it has not sent);
    batch endings from `since` on (default: the last `LOOKBACK` seconds)."""
    since = now - LOOKBACK if since is None else since
    found = [notice for detector in DETECTORS for notice in detector(tx, now, since, rules)]
    return sorted(found, key=lambda n: n.at)
