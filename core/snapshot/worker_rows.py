"""The workers pane: each worker with its heartbeat age and health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.liveness import STALE_AFTER_INTERVALS, pid_alive, this_host
from batchdash.core.models import (
    Worker,
    WorkerState,
)

#: A heartbeat older than this many intervals is "late" (yellow) before it is stale (red).
LATE_AFTER_INTERVALS = 1.5


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
        """The worker's JSON dict plus its health (its age as judged by `workers`)."""
        return {
            **self.worker.to_dict(now),
            "heartbeat_age": round(self.age, 3),
            "health": self.health,
        }


def worker_health(worker: Worker, now: float, host: str) -> str:
    """Health from the heartbeat age in units of the worker's own heartbeat interval.

    A live-looking worker on this host whose pid is gone is dead; the thresholds follow
    the worker's own stale rule (STALE_AFTER_INTERVALS), so the colours mean the same thing
    as the state the workers write.
    """
    if worker.state in (WorkerState.STOPPED, WorkerState.DEAD):
        return worker.state
    if worker.host == host and not pid_alive(worker.pid):
        return WorkerState.DEAD
    intervals = worker.heartbeat_age(now) / max(worker.heartbeat_interval, 1e-9)
    if worker.state == WorkerState.STALE or intervals > STALE_AFTER_INTERVALS:
        return WorkerState.STALE
    return "late" if intervals > LATE_AFTER_INTERVALS else "ok"


def workers(tx: Tx, now: float) -> list[WorkerRow]:
    """Every worker, latest heartbeat first, with its health.

    Ages are judged on the clock that stamped the heartbeats (`Stats.clock`): on PostgreSQL
    the server's, so a host whose clock is off never shows a live worker as stale.
    """
    host = this_host()
    now = tx.stats.clock(now)
    return [
        WorkerRow(w, w.heartbeat_age(now), worker_health(w, now, host))
        for w in tx.workers.list_workers()
    ]
