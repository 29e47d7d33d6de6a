"""PostgreSQL repository: PgWorkers, the workers Protocol of core/db/ports.py.

Behaves as core/db/sqlite/workers.py (shared half: core/db/sqlworkers.py), with one
difference: every time it stores or compares (heartbeats, leases, staleness, stop and
release times) is the server's clock, `batchdash_now()`, never the caller's `now`, because
workers on several hosts share the table and their clocks differ. A lease of
`lease_seconds` runs from the server's now. Multi-job writes are single set-based
statements over `unnest` of the held (id, token)s. The SQL only this back end runs is
written with psycopg's own `%s` placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlshared import (
    JOB_CANCELLED_SQL,
    JOB_PENDING_SQL,
    LIVE_WORKER_STATES_SQL,
    WORKER_STALE_SQL,
    pg_sql,
)
from batchdash.core.db.sqlworkers import SqlWorkers
from batchdash.core.models import HeartbeatReply, Worker, WorkerState

if TYPE_CHECKING:
    import psycopg

#: States after which a worker holds no jobs and has a stop time.
_ENDED = (WorkerState.STOPPED.value, WorkerState.DEAD.value)


#: Held jobs are found by id and fenced by their claim token alone: a job has a token exactly
#: while it runs (a claim sets it; finish, rescue and release clear it). A `status =
#: 'running'` test here let the planner walk every running job (the jobs_lease index) for
#: each held one when the statistics were taken with few running: 70 ms instead of 7 for a
#: worker's exchange beside 2,500 running jobs (tests/unit/test_pg_plans.py holds this).
HELD_JOBS_SQL = (
    "FROM unnest(%s::bigint[], %s::text[]) AS h(id, token) "
    "WHERE j.id = h.id AND j.claim_token = h.token "
)

#: A heartbeat's lease extension for the held (id, token)s.
EXTEND_LEASES_SQL = (
    "UPDATE jobs j SET lease_expires_at = batchdash_now() + %s "
    f"{HELD_JOBS_SQL} RETURNING j.id, j.cancel_requested"
)

#: A draining worker's unfinished jobs back to pending (cancelled if asked), with events.
RELEASE_SQL = (
    "WITH released AS ("
    f"UPDATE jobs j SET status = CASE WHEN j.cancel_requested THEN {JOB_CANCELLED_SQL} "
    f"ELSE {JOB_PENDING_SQL} END, attempts = greatest(j.attempts - 1, 0), "
    "claim_token = NULL, lease_expires_at = NULL, worker_id = NULL, run_after = 0, "
    "updated_at = batchdash_now(), cancel_requested = false "
    f"{HELD_JOBS_SQL} RETURNING j.id, j.queue, j.status) "
    "INSERT INTO events (at, kind, job_id, queue, worker_id, detail) "
    "SELECT batchdash_now(), 'released', id, queue, %s, 'worker shut down; now ' || status "
    "FROM released ORDER BY id"
)


def _held_arrays(held: Sequence[tuple[int, str]]) -> tuple[list[int], list[str]]:
    """The held (job id, claim token) pairs as two parallel arrays for `unnest`."""
    return [job_id for job_id, _ in held], [token for _, token in held]


class PgWorkers(SqlWorkers):
    """The workers repository on one psycopg connection."""

    ARRAYS = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql)

    def register_worker(self, worker: Worker) -> None:
        """Record a starting worker process (its first heartbeat, on the server's clock).

        A re-used id starts afresh (its old row is replaced), as on SQLite.
        """
        self._conn.execute(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, heartbeat_interval, "
            "state, queues, handler, concurrency, current_jobs, done, failed) "
            "VALUES (%s, %s, %s, batchdash_now(), batchdash_now(), %s, %s, %s, %s, %s, '[]', 0, 0) "
            "ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, "
            "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, "
            "heartbeat_interval = EXCLUDED.heartbeat_interval, state = EXCLUDED.state, "
            "queues = EXCLUDED.queues, handler = EXCLUDED.handler, "
            "concurrency = EXCLUDED.concurrency, current_jobs = '[]', done = 0, failed = 0, "
            "stopped_at = NULL, note = NULL, stop_requested = false",
            (
                worker.id,
                worker.host,
                worker.pid,
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
        and whether the worker was asked to stop. `now` is unused: the server's clock rules.

        A heartbeat clears the worker's note: the condition it described is over.
        """
        row = self._conn.execute(
            "UPDATE workers SET heartbeat_at = batchdash_now(), state = %s, current_jobs = %s, "
            "done = %s, failed = %s, note = NULL WHERE id = %s RETURNING stop_requested",
            (state, json.dumps([job_id for job_id, _ in held]), done, failed, worker_id),
        ).fetchone()
        ids, tokens = _held_arrays(held)
        kept = self._conn.execute(EXTEND_LEASES_SQL, (lease_seconds, ids, tokens)).fetchall()
        extended = {r["id"] for r in kept if not r["cancel_requested"]}
        # A lost lease (rescued and maybe re-claimed elsewhere) is aborted like a cancel.
        cancel = [job_id for job_id in ids if job_id not in extended]
        return HeartbeatReply(cancel, stop=bool(row is not None and row["stop_requested"]))

    def release(self, worker_id: str, held: Sequence[tuple[int, str]], now: float) -> int:
        """Give a draining worker's unfinished jobs back to pending; the attempt is not counted.

        One statement releases the jobs and writes their `released` events.
        """
        ids, tokens = _held_arrays(held)
        cur = self._conn.execute(RELEASE_SQL, (ids, tokens, worker_id))
        return int(cur.rowcount)

    def set_worker_state(self, worker_id: str, state: str, now: float) -> None:
        """Set a worker's state; stopping or dying also clears its current jobs."""
        ended = state in _ENDED
        self._conn.execute(
            "UPDATE workers SET state = %s, "
            "stopped_at = CASE WHEN %s THEN batchdash_now() ELSE stopped_at END, "
            "current_jobs = CASE WHEN %s THEN '[]' ELSE current_jobs END WHERE id = %s",
            (state, ended, ended, worker_id),
        )

    def mark_stale_workers(self, factor: float, now: float) -> list[str]:
        """Flag live-looking workers whose heartbeat is older than `factor` intervals."""
        rows = self._conn.execute(
            f"UPDATE workers SET state = {WORKER_STALE_SQL} "
            f"WHERE state IN {LIVE_WORKER_STATES_SQL} "
            "AND heartbeat_at < batchdash_now() - %s * heartbeat_interval RETURNING id",
            (factor,),
        ).fetchall()
        return [r["id"] for r in rows]
