"""Job writes: enqueue, claim, finish, cancel, retry, rescue."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from batchdash.core.actor import ASKED_TO_STOP, Actor, by_user, event_detail
from batchdash.core.db.sqlite.job_pages import JobPages
from batchdash.core.db.sqlite.queues import SqliteQueues
from batchdash.core.db.sqlite.rows import (
    _event_rows,
)
from batchdash.core.db.sqlshared import (
    JOB_CANCELLED_SQL,
    JOB_FAILED_SQL,
    JOB_PENDING_SQL,
    JOB_RUNNING_SQL,
    RETRYABLE_JOB_STATUSES_SQL,
    WORKER_DEAD_SQL,
    _loads,
    _where,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import (
    Claim,
    JobFilter,
    NewJob,
    Outcome,
    dumps,
)

#: A job to insert: (key, payload JSON, priority, attempts, max_attempts).
JobRow = tuple[str, str, int, int, int]


def _insert_jobs(
    conn: sqlite3.Connection,
    queue: str,
    handler: str,
    rows: Iterable[JobRow],
    now: float,
    batch_id: int | None,
) -> int:
    """Insert pending jobs and their payloads, skipping keys the queue already has.

    Returns the first id given out: the new jobs are exactly those with id >= it. Ids
    are chosen here, after the current maximum (stable inside this IMMEDIATE
    transaction), so each payload goes in under its job's id by one executemany instead
    of a lookup per job. A skipped key leaves its id unused.
    """
    first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM jobs").fetchone()[0])
    numbered = list(enumerate(rows, first))
    conn.executemany(
        "INSERT INTO jobs (id, queue, key, handler, status, priority, attempts, "
        "max_attempts, run_after, created_at, updated_at, batch_id) "
        f"VALUES (?, ?, ?, ?, {JOB_PENDING_SQL}, ?, ?, ?, 0, ?, ?, ?) "
        "ON CONFLICT (queue, key) DO NOTHING",
        (
            (job_id, queue, key, handler, priority, attempts, max_attempts, now, now, batch_id)
            for job_id, (key, _, priority, attempts, max_attempts) in numbered
        ),
    )
    conn.executemany(
        "INSERT INTO job_payloads (job_id, payload) "
        "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)",
        ((job_id, row[1]) for job_id, row in numbered),
    )
    return first


def _queue_exclusion() -> str:
    return "j.queue NOT IN (SELECT name FROM queues WHERE paused = 1)"


def _payloads(conn: sqlite3.Connection, job_ids: Sequence[int]) -> dict[int, str]:
    """Payload JSON by job id, for a claim's worth of jobs (one statement)."""
    if not job_ids:
        return {}
    marks = ",".join("?" * len(job_ids))
    rows = conn.execute(
        f"SELECT job_id, payload FROM job_payloads WHERE job_id IN ({marks})", job_ids
    )
    return {job_id: payload for job_id, payload in rows}


#: Outcomes applied per statement (10 parameters each, well under SQLite's limit).
_FINISH_CHUNK = 256


def _set_results(conn: sqlite3.Connection, results: Sequence[tuple[int, str | None]]) -> None:
    """Store (job id, result JSON) pairs; None clears the job's result."""
    conn.executemany(
        "INSERT INTO job_results (job_id, result) VALUES (?, ?) "
        "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result",
        ((job_id, result) for job_id, result in results if result is not None),
    )
    conn.executemany(
        "DELETE FROM job_results WHERE job_id = ?",
        ((job_id,) for job_id, result in results if result is None),
    )


class SqliteJobs(JobPages):
    """Jobs on one SQLite connection: writes here, reads from `JobPages`."""

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
        SqliteQueues(self._conn).ensure_queue(queue, now)
        rows = [(j.key, dumps(j.payload), j.priority, 0, j.max_attempts) for j in jobs]
        first = _insert_jobs(self._conn, queue, handler, rows, now, batch_id)
        # Skipped keys left their ids unused, so these updates touch new jobs only.
        self._conn.executemany(
            "UPDATE jobs SET timeout = ? WHERE id = ?",
            ((j.timeout, job_id) for job_id, j in enumerate(jobs, first) if j.timeout is not None),
        )
        if endpoint_name is not None:
            self._conn.execute(
                "UPDATE jobs SET endpoint_name = ? WHERE id >= ?", (endpoint_name, first)
            )
        inserted = self._conn.execute(
            "INSERT INTO events (at, kind, job_id, batch_id, queue) "
            "SELECT ?, 'enqueued', id, batch_id, queue FROM jobs WHERE id >= ?",
            (now, first),
        ).rowcount
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

        INDEXED BY pins the partial claim index: without statistics the planner prefers the
        (status, updated_at) index and sorts every pending job on each claim.
        """
        queue_clause = ""
        params: list[Any] = [worker_id, token, now + lease_seconds, now, now, now]
        if queues:
            queue_clause = f"AND j.queue IN ({','.join('?' * len(queues))})"
            params.extend(queues)
        params.append(limit)
        rows = self._conn.execute(
            f"""
            UPDATE jobs SET status = {JOB_RUNNING_SQL}, attempts = attempts + 1, worker_id = ?,
                claim_token = ?, lease_expires_at = ?, started_at = ?, finished_at = NULL,
                updated_at = ?, error = NULL, error_kind = NULL, stage = NULL, progress = NULL,
                progress_note = NULL
            WHERE id IN (
                SELECT j.id FROM jobs j INDEXED BY jobs_claim
                WHERE j.status = {JOB_PENDING_SQL} AND j.batch_id IS NULL AND j.run_after <= ?
                  AND {_queue_exclusion()} {queue_clause}
                ORDER BY j.priority DESC, j.run_after, j.id
                LIMIT ?)
            RETURNING id, queue, key, handler, attempts, max_attempts, priority, run_after, timeout,
            endpoint_name
            """,
            params,
        ).fetchall()
        payloads = _payloads(self._conn, [r["id"] for r in rows])
        # RETURNING order is unspecified: restore the claim order for the worker.
        rows.sort(key=lambda r: (-r["priority"], r["run_after"], r["id"]))
        _event_rows(
            self._conn,
            (
                (
                    now,
                    "claimed",
                    r["id"],
                    None,
                    r["queue"],
                    worker_id,
                    f"attempt {r['attempts']}/{r['max_attempts']}",
                )
                for r in rows
            ),
        )
        return [
            Claim(
                job_id=r["id"],
                queue=r["queue"],
                key=r["key"],
                handler=r["handler"],
                payload=_loads(payloads[r["id"]]),
                attempts=r["attempts"],
                max_attempts=r["max_attempts"],
                token=token,
                timeout=r["timeout"],
                endpoint_name=r["endpoint_name"],
            )
            for r in rows
        ]

    def finish(self, worker_id: str | None, outcomes: Sequence[Outcome]) -> list[int]:
        """Apply fenced outcomes; returns the ids whose claim was still valid.

        One `UPDATE … FROM (VALUES …)` per chunk instead of one statement per job: a busy
        worker reports dozens of outcomes per transaction, and this is its hot path.
        """
        accepted: list[int] = []
        by_id = {o.job_id: o for o in outcomes}
        for first in range(0, len(outcomes), _FINISH_CHUNK):
            chunk = outcomes[first : first + _FINISH_CHUNK]
            values = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            params = [
                value
                for o in chunk
                for value in (
                    o.job_id,
                    o.token,
                    o.status,
                    o.error,
                    o.error_kind,
                    o.run_after,
                    o.finished_at,
                    o.input_tokens,
                    o.output_tokens,
                    o.cost,
                )
            ]
            rows = self._conn.execute(
                f"""
                UPDATE jobs SET status = v.column3, error = v.column4, error_kind = v.column5,
                    run_after = v.column6, finished_at = v.column7, updated_at = v.column7,
                    input_tokens = v.column8, output_tokens = v.column9, cost = v.column10,
                    claim_token = NULL, lease_expires_at = NULL, cancel_requested = 0
                FROM (VALUES {values}) AS v
                WHERE jobs.id = v.column1 AND jobs.claim_token = v.column2
                  AND jobs.status = {JOB_RUNNING_SQL}
                RETURNING jobs.id, jobs.queue
                """,
                params,
            ).fetchall()
            events = []
            for row in rows:
                o = by_id[row["id"]]
                accepted.append(o.job_id)
                events.append(
                    (
                        o.finished_at,
                        o.event or o.status,
                        o.job_id,
                        None,
                        row["queue"],
                        worker_id,
                        o.detail,
                    )
                )
            _event_rows(self._conn, events)
            _set_results(self._conn, [(row["id"], by_id[row["id"]].result_json) for row in rows])
        return accepted

    def cancel(self, flt: JobFilter, now: float, actor: Actor | None = None) -> tuple[int, int]:
        """Cancel pending jobs at once and flag running ones; returns (cancelled, flagged)."""
        where, params = _where(flt)
        done = self._conn.execute(
            f"UPDATE jobs AS j SET status = {JOB_CANCELLED_SQL}, finished_at = ?, updated_at = ?, "
            f"error_kind = {JOB_CANCELLED_SQL} WHERE j.status = {JOB_PENDING_SQL} AND {where} "
            f"RETURNING id, queue",
            [now, now, *params],
        ).fetchall()
        flagged = self._conn.execute(
            f"UPDATE jobs AS j SET cancel_requested = 1 WHERE j.status = {JOB_RUNNING_SQL} "
            f"AND j.cancel_requested = 0 AND {where} RETURNING id, queue",
            params,
        ).fetchall()
        by, asked = by_user(actor), event_detail(actor, ASKED_TO_STOP)
        _event_rows(
            self._conn,
            [(now, "cancelled", r["id"], None, r["queue"], None, by) for r in done]
            + [(now, "cancel_requested", r["id"], None, r["queue"], None, asked) for r in flagged],
        )
        return len(done), len(flagged)

    def retry(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Put failed/cancelled local jobs back to pending with a fresh set of attempts."""
        where, params = _where(flt)
        rows = self._conn.execute(
            f"UPDATE jobs AS j SET status = {JOB_PENDING_SQL}, attempts = 0, run_after = 0, "
            f"updated_at = ?, finished_at = NULL, worker_id = NULL, cancel_requested = 0, "
            f"error = NULL, error_kind = NULL "
            f"WHERE j.status IN {RETRYABLE_JOB_STATUSES_SQL} AND j.batch_id IS NULL AND {where} "
            f"RETURNING id, queue, error",
            [now, *params],
        ).fetchall()
        by = by_user(actor)
        _event_rows(
            self._conn, [(now, "retried", r["id"], None, r["queue"], None, by) for r in rows]
        )
        return len(rows)

    def rescue(self, flt: JobFilter, now: float, actor: Actor | None = None) -> int:
        """Take back running jobs whose lease expired (their worker died or hung).

        The lost attempt stays counted; a job out of attempts fails, a job whose cancel was
        requested is cancelled, the rest go back to pending.
        """
        where, params = _where(flt)
        rows = self._conn.execute(
            f"""
            UPDATE jobs AS j SET
                status = CASE WHEN j.cancel_requested THEN {JOB_CANCELLED_SQL}
                              WHEN j.attempts >= j.max_attempts THEN {JOB_FAILED_SQL}
                              ELSE {JOB_PENDING_SQL} END,
                error = 'lease expired: worker ' || coalesce(j.worker_id, '?') || ' stopped '
                        || 'heartbeating',
                error_kind = 'lease_expired', run_after = 0, claim_token = NULL,
                lease_expires_at = NULL, updated_at = ?,
                finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
                                   THEN ? ELSE NULL END,
                cancel_requested = 0
            WHERE j.status = {JOB_RUNNING_SQL} AND {where}
              AND (j.lease_expires_at < ?
                   OR j.worker_id IN (SELECT id FROM workers WHERE state = {WORKER_DEAD_SQL}))
            RETURNING id, queue, status, worker_id, attempts, max_attempts
            """,
            [now, now, *params, now],
        ).fetchall()
        _event_rows(
            self._conn,
            (
                (
                    now,
                    "rescued",
                    r["id"],
                    None,
                    r["queue"],
                    r["worker_id"],
                    event_detail(
                        actor,
                        f"lease expired after attempt {r['attempts']}/{r['max_attempts']}; "
                        f"now {r['status']}",
                    ),
                )
                for r in rows
            ),
        )
        return len(rows)

    def require_jobs(self, ids: Sequence[int]) -> None:
        """Raise NotFoundError naming the first id that does not exist."""
        for job_id in ids:
            if self._conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                raise NotFoundError(f"unknown job id {job_id}")

    def existing_job_ids(self, ids: Sequence[int]) -> set[int]:
        """Which of these job ids exist."""
        if not ids:
            return set()
        rows = self._conn.execute(
            f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(ids))})", ids
        )
        return {r[0] for r in rows}
