"""Job writes on PostgreSQL: enqueue, claim, finish, cancel, retry, rescue (PgJobs).

The same behaviour as `core/db/sqlite/jobs.py`, each change written with its events in one
statement (a data-modifying CTE), and with one clock for all hosts: claim eligibility
(`run_after <= now`), lease expiry, rescue, cancel and retry use the server's
`batchdash_now()`, never the caller's `now`. A time the caller computed relative to its own
clock converts as `batchdash_now() + (value - now)`: the lease (`lease_seconds` from now)
and a retry's `Outcome.run_after` (its delay after `Outcome.finished_at`). `started_at` and
`finished_at` stay the worker's own readings, so a job's duration is measured on one clock.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.actor import ASKED_TO_STOP, Actor, by_user, event_detail
from batchdash.core.db.postgres.connection import LOCK_RESCUE
from batchdash.core.db.postgres.job_pages import PgJobPages, _pg_where, _value
from batchdash.core.db.postgres.queues import PgQueues
from batchdash.core.db.sqlshared import (
    JOB_CANCELLED_SQL,
    JOB_FAILED_SQL,
    JOB_PENDING_SQL,
    JOB_RUNNING_SQL,
    RETRYABLE_JOB_STATUSES_SQL,
    WORKER_DEAD_SQL,
    _loads,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Claim, JobFilter, NewJob, Outcome, dumps

if TYPE_CHECKING:
    pass


@functools.lru_cache(maxsize=256)
def claim_sql(by_queue: bool, limit: int) -> str:
    """The claim: pick, lock, update and log up to `limit` runnable jobs in one statement.

    `id = ANY(ARRAY(subquery))`, not `id IN (subquery)`: under the generic plan psycopg's
    prepared statement switches to after five runs, the IN form joins by a Seq Scan of
    jobs (tests/unit/test_pg_plans.py holds this). SKIP LOCKED lets concurrent claimers
    pass each other's picks instead of waiting on them.

    The limit is written into the text (an int, one statement per limit a worker uses):
    as a parameter the planner prices a generic plan for 10% of the table, so the server
    never took that plan and planned every claim anew (0.4 ms, ~6 µs a job at 64).
    """
    by_queue_sql = "AND j.queue = ANY(%(queues)s)" if by_queue else ""
    return f"""
    WITH claimed AS (
        UPDATE jobs SET status = {JOB_RUNNING_SQL}, attempts = attempts + 1,
            worker_id = %(worker)s, claim_token = %(token)s,
            lease_expires_at = batchdash_now() + %(lease)s, started_at = %(now)s,
            finished_at = NULL, updated_at = %(now)s, error = NULL, error_kind = NULL,
            stage = NULL, progress = NULL, progress_note = NULL
        WHERE id = ANY(ARRAY(
            SELECT j.id FROM jobs j
            WHERE j.status = {JOB_PENDING_SQL} AND j.batch_id IS NULL
              AND j.run_after <= batchdash_now()
              AND j.queue NOT IN (SELECT name FROM queues WHERE paused) {by_queue_sql}
            ORDER BY j.priority DESC, j.run_after, j.id
            LIMIT {int(limit)}
            FOR UPDATE SKIP LOCKED))
        RETURNING id, queue, key, handler, attempts, max_attempts, priority, run_after, timeout,
            endpoint_name
    ), logged AS (
        INSERT INTO events (at, kind, job_id, queue, worker_id, detail)
        SELECT %(now)s, 'claimed', id, queue, %(worker)s,
               'attempt ' || attempts || '/' || max_attempts
        FROM claimed ORDER BY priority DESC, run_after, id
    )
    SELECT c.*, p.payload FROM claimed c JOIN job_payloads p ON p.job_id = c.id
    ORDER BY c.priority DESC, c.run_after, c.id
    """


#: Fenced outcomes from parallel arrays: the jobs, their events and results in one statement.
#: The claim token alone fences (see workers.HELD_JOBS_SQL: a status test let the planner
#: walk every running job for each outcome).
FINISH_SQL = f"""
WITH v AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[], %(statuses)s::text[],
        %(errors)s::text[], %(kinds)s::text[], %(run_after)s::float8[],
        %(finished)s::float8[], %(input_tokens)s::bigint[], %(output_tokens)s::bigint[],
        %(costs)s::float8[], %(events)s::text[], %(details)s::text[], %(results)s::text[])
        AS v(id, token, status, error, error_kind, run_after, finished_at, input_tokens,
             output_tokens, cost, event, detail, result)
), done AS (
    UPDATE jobs j SET status = v.status, error = v.error, error_kind = v.error_kind,
        run_after = CASE WHEN v.status = {JOB_PENDING_SQL}
                         THEN batchdash_now() + (v.run_after - v.finished_at)
                         ELSE v.run_after END,
        finished_at = v.finished_at, updated_at = v.finished_at,
        input_tokens = v.input_tokens, output_tokens = v.output_tokens, cost = v.cost,
        claim_token = NULL, lease_expires_at = NULL, cancel_requested = false
    FROM v
    WHERE j.id = v.id AND j.claim_token = v.token
    RETURNING j.id, j.queue, v.status, v.finished_at, v.event, v.detail, v.result
), logged AS (
    INSERT INTO events (at, kind, job_id, queue, worker_id, detail)
    SELECT finished_at, coalesce(nullif(event, ''), status), id, queue, %(worker)s, detail
    FROM done ORDER BY id
), stored AS (
    INSERT INTO job_results (job_id, result)
    SELECT id, result FROM done WHERE result IS NOT NULL ORDER BY id
    ON CONFLICT (job_id) DO UPDATE SET result = excluded.result
), cleared AS (
    DELETE FROM job_results r USING done WHERE r.job_id = done.id AND done.result IS NULL
)
SELECT id FROM done
"""


#: New jobs from parallel arrays, their payloads and `enqueued` events in one statement.
#: Keys the queue already has (or repeated in the arrays: the first wins) are left out before
#: the insert so they use up no ids. The keys' uniqueness is job_search's (migration 0014):
#: a concurrent enqueue of the same new key fails there, and the store runs the transaction
#: again (`connection.is_busy`), when this lookup finds that key.
ENQUEUE_SQL = f"""
WITH v AS (
    SELECT * FROM unnest(%(keys)s::text[], %(payloads)s::text[], %(priorities)s::int[],
        %(max_attempts)s::int[], %(timeouts)s::float8[]) WITH ORDINALITY
        AS v(key, payload, priority, max_attempts, timeout, n)
), fresh AS (
    SELECT DISTINCT ON (key) * FROM v
    WHERE NOT EXISTS (SELECT 1 FROM job_search s WHERE s.queue = %(queue)s AND s.key = v.key)
    ORDER BY key, n
), added AS (
    INSERT INTO jobs (queue, key, handler, status, priority, attempts, max_attempts,
        run_after, created_at, updated_at, batch_id, timeout, endpoint_name)
    SELECT %(queue)s, key, %(handler)s, {JOB_PENDING_SQL}, priority, 0, max_attempts, 0,
        %(now)s, %(now)s, %(batch)s, timeout, %(endpoint)s::text
    FROM fresh ORDER BY n
    RETURNING id, key, queue, batch_id
), bodies AS (
    INSERT INTO job_payloads (job_id, payload)
    SELECT added.id, fresh.payload FROM added JOIN fresh USING (key)
), logged AS (
    INSERT INTO events (at, kind, job_id, batch_id, queue)
    SELECT %(now)s, 'enqueued', id, batch_id, queue FROM added ORDER BY id
)
SELECT count(*) AS v FROM added
"""


def _claim(row: dict[str, Any], token: str) -> Claim:
    return Claim(
        job_id=row["id"],
        queue=row["queue"],
        key=row["key"],
        handler=row["handler"],
        payload=_loads(row["payload"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        token=token,
        timeout=row["timeout"],
        endpoint_name=row["endpoint_name"],
    )


def _finish_params(worker_id: str | None, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """FINISH_SQL's parallel arrays, one element per outcome."""
    return {
        "worker": worker_id,
        "ids": [o.job_id for o in outcomes],
        "tokens": [o.token for o in outcomes],
        "statuses": [str(o.status) for o in outcomes],
        "errors": [o.error for o in outcomes],
        "kinds": [o.error_kind for o in outcomes],
        "run_after": [o.run_after for o in outcomes],
        "finished": [o.finished_at for o in outcomes],
        "input_tokens": [o.input_tokens for o in outcomes],
        "output_tokens": [o.output_tokens for o in outcomes],
        "costs": [o.cost for o in outcomes],
        "events": [o.event for o in outcomes],
        "details": [o.detail for o in outcomes],
        "results": [o.result_json for o in outcomes],
    }


class PgJobs(PgJobPages):
    """Jobs on one psycopg connection: writes here, reads from `PgJobPages`."""

    def enqueue(
        self,
        queue: str,
        handler: str,
        jobs: Sequence[NewJob],
        now: float,
        batch_id: int | None,
        endpoint_name: str | None = None,
    ) -> tuple[int, int]:
        """Insert jobs, skipping keys already in the queue; returns (inserted, skipped)."""
        PgQueues(self._conn).ensure_queue(queue, now)
        params = {
            "queue": queue,
            "handler": handler,
            "now": now,
            "batch": batch_id,
            "keys": [j.key for j in jobs],
            "payloads": [dumps(j.payload) for j in jobs],
            "priorities": [j.priority for j in jobs],
            "max_attempts": [j.max_attempts for j in jobs],
            "timeouts": [j.timeout for j in jobs],
            "endpoint": endpoint_name,
        }
        inserted = int(_value(self._conn, ENQUEUE_SQL, params))
        return inserted, len(jobs) - inserted

    def claim(
        self,
        worker_id: str,
        token: str,
        limit: int,
        lease_seconds: float,
        queues: Sequence[str],
        now: float,
    ) -> list[Claim]:
        """Claim up to `limit` runnable jobs in one UPDATE … RETURNING statement.

        A new attempt starts without the last one's error: a job waiting for its retry still
        shows why it failed, a running one does not (the timeline keeps every error).
        """
        params = {
            "worker": worker_id,
            "token": token,
            "lease": lease_seconds,
            "now": now,
            "queues": list(queues),
        }
        rows = self._conn.execute(claim_sql(bool(queues), limit), params)
        return [_claim(row, token) for row in rows]

    def finish(self, worker_id: str | None, outcomes: Sequence[Outcome]) -> list[int]:
        """Apply fenced outcomes; returns the ids whose claim was still valid."""
        if not outcomes:
            return []
        rows = self._conn.execute(FINISH_SQL, _finish_params(worker_id, outcomes))
        accepted = {row["id"] for row in rows}
        return [o.job_id for o in outcomes if o.job_id in accepted]

    def cancel(self, flt: JobFilter, now: float, actor: Actor | None = None) -> tuple[int, int]:
        """Cancel pending jobs at once and flag running ones; returns (cancelled, flagged)."""
        where, params = _pg_where(flt)
        done = self._changed_with_event(
            f"UPDATE jobs AS j SET status = {JOB_CANCELLED_SQL}, finished_at = batchdash_now(), "
            f"updated_at = batchdash_now(), error_kind = {JOB_CANCELLED_SQL} "
            f"WHERE j.status = {JOB_PENDING_SQL} AND {where} "
            "RETURNING id, queue, NULL AS worker_id, %s::text AS detail",
            [*params, by_user(actor)],
            "cancelled",
        )
        flagged = self._changed_with_event(
            f"UPDATE jobs AS j SET cancel_requested = true WHERE j.status = {JOB_RUNNING_SQL} "
            f"AND NOT j.cancel_requested AND {where} RETURNING id, queue, NULL AS worker_id, "
            "%s::text AS detail",
            [*params, event_detail(actor, ASKED_TO_STOP)],
            "cancel_requested",
        )
        return done, flagged

    def retry(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Put failed/cancelled local jobs back to pending with a fresh set of attempts."""
        where, params = _pg_where(flt)
        return self._changed_with_event(
            f"UPDATE jobs AS j SET status = {JOB_PENDING_SQL}, attempts = 0, run_after = 0, "
            "updated_at = batchdash_now(), finished_at = NULL, worker_id = NULL, "
            "cancel_requested = false, error = NULL, error_kind = NULL "
            f"WHERE j.status IN {RETRYABLE_JOB_STATUSES_SQL} AND j.batch_id IS NULL "
            f"AND {where} RETURNING id, queue, NULL AS worker_id, %s::text AS detail",
            [*params, by_user(actor)],
            "retried",
        )

    def rescue(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Take back running jobs whose lease expired (their worker died or hung).

        The lost attempt stays counted; a job out of attempts fails, a job whose cancel was
        requested is cancelled, the rest go back to pending.

        One process rescues at a time, whatever many heartbeat: the others skip (0) while the
        transaction-scoped advisory lock is taken, instead of queueing on the same rows (a
        waiting rescue could deadlock against a heartbeat that is extending those leases).
        """
        if not _value(self._conn, "SELECT pg_try_advisory_xact_lock(%s, %s) AS v", LOCK_RESCUE):
            return 0
        where, params = _pg_where(flt)
        return self._changed_with_event(
            f"""
            UPDATE jobs AS j SET
                status = CASE WHEN j.cancel_requested THEN {JOB_CANCELLED_SQL}
                              WHEN j.attempts >= j.max_attempts THEN {JOB_FAILED_SQL}
                              ELSE {JOB_PENDING_SQL} END,
                error = 'lease expired: worker ' || coalesce(j.worker_id, '?') || ' stopped '
                        || 'heartbeating',
                error_kind = 'lease_expired', run_after = 0, claim_token = NULL,
                lease_expires_at = NULL, updated_at = batchdash_now(),
                finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
                                   THEN batchdash_now() ELSE NULL END,
                cancel_requested = false
            WHERE j.status = {JOB_RUNNING_SQL} AND {where}
              AND (j.lease_expires_at < batchdash_now()
                   OR j.worker_id IN (SELECT id FROM workers WHERE state = {WORKER_DEAD_SQL}))
            RETURNING id, queue, worker_id,
                'lease expired after attempt ' || attempts || '/' || max_attempts
                || '; now ' || status || %s::text AS detail
            """,
            [*params, "; " + str(actor) if actor else ""],
            "rescued",
        )

    def _changed_with_event(self, update: str, params: list[Any], kind: str) -> int:
        """Run an UPDATE … RETURNING id, queue, worker_id, detail; log a `kind` event per row.

        One statement, stamped with the server's clock; returns how many jobs changed.
        """
        sql = (
            f"WITH changed AS ({update}), logged AS ("
            "INSERT INTO events (at, kind, job_id, queue, worker_id, detail) "
            "SELECT batchdash_now(), %s, id, queue, worker_id, detail FROM changed "
            "ORDER BY id RETURNING 1) SELECT count(*) AS v FROM logged"
        )
        return int(_value(self._conn, sql, [*params, kind]))

    def require_jobs(self, ids: Sequence[int]) -> None:
        """Raise NotFoundError naming the first id that does not exist."""
        found = self.existing_job_ids(ids)
        for job_id in ids:
            if job_id not in found:
                raise NotFoundError(f"unknown job id {job_id}")

    def existing_job_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of these job ids exist."""
        if not ids:
            return set()
        rows = self._conn.execute("SELECT id FROM jobs WHERE id = ANY(%s)", (list(ids),))
        return {r["id"] for r in rows}
