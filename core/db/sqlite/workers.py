"""Workers on SQLite: registration, heartbeats, release, staleness on the caller's clock;
the rest is shared (`core/db/sqlworkers.py`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from batchdash.core.db.sqlite.rows import (
    _event_rows,
)
from batchdash.core.db.sqlshared import (
    JOB_CANCELLED_SQL,
    JOB_PENDING_SQL,
    JOB_RUNNING_SQL,
    LIVE_WORKER_STATES_SQL,
    WORKER_STALE_SQL,
    same_sql,
)
from batchdash.core.db.sqlworkers import SqlWorkers
from batchdash.core.models import (
    HeartbeatReply,
    Worker,
)


class SqliteWorkers(SqlWorkers):
    """Worker rows on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql)

    def register_worker(self, worker: Worker) -> None:
        """Record a starting worker process (its first heartbeat)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO workers (id, host, pid, started_at, heartbeat_at, "
            "heartbeat_interval, state, queues, handler, concurrency, current_jobs, done, failed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', 0, 0)",
            (
                worker.id,
                worker.host,
                worker.pid,
                worker.started_at,
                worker.heartbeat_at,
                worker.heartbeat_interval,
                worker.state,
                json.dumps(worker.queues),
                worker.handler,
                worker.concurrency,
            ),
        )

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
        and whether the worker was asked to stop.

        A heartbeat clears the worker's note: the condition it described is over.
        """
        me = self._conn.execute(
            "UPDATE workers SET heartbeat_at = ?, state = ?, current_jobs = ?, done = ?, "
            "failed = ?, note = NULL WHERE id = ? RETURNING stop_requested",
            (now, state, json.dumps([job_id for job_id, _ in held]), done, failed, worker_id),
        ).fetchone()
        cancel: list[int] = []
        for job_id, token in held:
            row = self._conn.execute(
                "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND claim_token = ? "
                f"AND status = {JOB_RUNNING_SQL} RETURNING cancel_requested",
                (now + lease_seconds, job_id, token),
            ).fetchone()
            # A lost lease (rescued and maybe re-claimed elsewhere) is aborted like a cancel.
            if row is None or row["cancel_requested"]:
                cancel.append(job_id)
        return HeartbeatReply(cancel, stop=bool(me is not None and me["stop_requested"]))

    def release(self, worker_id: str, held: Sequence[tuple[int, str]], now: float) -> int:
        """Give a draining worker's unfinished jobs back to pending; the attempt is not counted."""
        released = 0
        for job_id, token in held:
            row = self._conn.execute(
                f"UPDATE jobs SET status = CASE WHEN cancel_requested THEN {JOB_CANCELLED_SQL} "
                f"ELSE {JOB_PENDING_SQL} END, attempts = max(attempts - 1, 0), claim_token = NULL, "
                "lease_expires_at = NULL, worker_id = NULL, run_after = 0, updated_at = ?, "
                "cancel_requested = 0 "
                f"WHERE id = ? AND claim_token = ? AND status = {JOB_RUNNING_SQL} "
                "RETURNING queue, status",
                (now, job_id, token),
            ).fetchone()
            if row is not None:
                released += 1
                _event_rows(
                    self._conn,
                    [
                        (
                            now,
                            "released",
                            job_id,
                            None,
                            row["queue"],
                            worker_id,
                            f"worker shut down; now {row['status']}",
                        )
                    ],
                )
        return released

    def set_worker_state(self, worker_id: str, state: str, now: float) -> None:
        """Set a worker's state; stopping or dying also clears its current jobs."""
        stopped = now if state in ("stopped", "dead") else None
        self._conn.execute(
            "UPDATE workers SET state = ?, stopped_at = coalesce(?, stopped_at), "
            "current_jobs = CASE WHEN ? IS NULL THEN current_jobs ELSE '[]' END WHERE id = ?",
            (state, stopped, stopped, worker_id),
        )

    def mark_stale_workers(self, factor: float, now: float) -> list[str]:
        """Flag live-looking workers whose heartbeat is older than `factor` intervals."""
        rows = self._conn.execute(
            f"UPDATE workers SET state = {WORKER_STALE_SQL} "
            f"WHERE state IN {LIVE_WORKER_STATES_SQL} "
            "AND heartbeat_at < ? - ? * heartbeat_interval RETURNING id",
            (now, factor),
        ).fetchall()
        return [r["id"] for r in rows]
