"""The pruning repository, written once for both back ends (shared SQL with `?` placeholders,
converted by the back end's `sql` function, as `core/db/sqlqueues.py`).

The only difference is how the picked jobs are held until they are deleted: SQLite's write
transaction already excludes every other writer; PostgreSQL locks the picked rows
(`FOR UPDATE SKIP LOCKED`), so a concurrent `retry` either waits for the prune or is
skipped by it, and never has its job deleted from under it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from batchdash.core.db.sqlshared import TERMINAL_BATCH_STATES_SQL, SharedSqlRepository
from batchdash.core.prune import Pruned, PruneScope


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _prunable(scope: PruneScope, alias: str = "j") -> tuple[str, list[Any]]:
    """The condition (on jobs `alias`) that a job is prunable, and its parameters."""
    sql = (
        f"{alias}.status IN ({_marks(scope.statuses)}) "
        f"AND coalesce({alias}.finished_at, {alias}.updated_at) < ?"
    )
    params: list[Any] = [*scope.statuses, scope.cutoff]
    if scope.queues:
        sql += f" AND {alias}.queue IN ({_marks(scope.queues)})"
        params.extend(scope.queues)
    return sql, params


def _prunable_batches(scope: PruneScope) -> tuple[str, list[Any]]:
    """The WHERE (on batches `b`) of batches that ended before the cutoff and whose every
    job and line is prunable: after the jobs are pruned, batches that hold nothing."""
    job_sql, job_params = _prunable(scope)
    sql = (
        f"b.state IN {TERMINAL_BATCH_STATES_SQL} AND b.ingested_at IS NOT NULL "
        "AND b.updated_at < ? "
        f"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND NOT ({job_sql})) "
        "AND NOT EXISTS (SELECT 1 FROM batch_items i LEFT JOIN jobs j ON j.id = i.job_id "
        f"WHERE i.batch_id = b.id AND (j.id IS NULL OR NOT ({job_sql})))"
    )
    params: list[Any] = [scope.cutoff, *job_params, *job_params]
    if scope.queues:
        sql += f" AND b.queue IN ({_marks(scope.queues)})"
        params.extend(scope.queues)
    return sql, params


#: What hangs off a job, deleted before it (the foreign keys point at the job), as the
#: field of `Pruned` that counts it and the table. QA scores go with their verdicts.
_JOB_CHILDREN = (
    ("events", "events"),
    ("qa_results", "qa_results"),
    ("batch_items", "batch_items"),
    ("tags", "job_tags"),
    (None, "job_payloads"),
    (None, "job_results"),
)


class SqlPrune(SharedSqlRepository):
    """Pruning on one connection (SQLite's or psycopg's).

    `walk` is the FROM of the pick, which must walk the jobs in id order: SQLite's planner
    would rather take the (status, time) index and sort every finished job at each pick
    (O(n) per transaction), so its store passes `jobs j NOT INDEXED` (the rowid range).
    `lock` ends the pick.
    """

    def __init__(
        self, conn: Any, sql: Callable[[str], str], *, walk: str = "jobs j", lock: str = ""
    ) -> None:
        super().__init__(conn, sql)
        self._walk = walk
        self._lock = lock

    def _count(self, sql: str, params: Sequence[Any]) -> int:
        return int(self._run(f"SELECT count(*) AS n FROM {sql}", params).fetchone()["n"])

    def count_prunable(self, scope: PruneScope) -> Pruned:
        """What a prune of `scope` would delete now (the `--dry-run` figures)."""
        where, params = _prunable(scope)
        jobs = f"(SELECT j.id FROM jobs j WHERE {where})"
        counted = {
            field: self._count(f"{table} WHERE job_id IN {jobs}", params)
            for field, table in _JOB_CHILDREN
            if field is not None
        }
        batch_where, batch_params = _prunable_batches(scope)
        return Pruned(
            jobs=self._count(f"jobs j WHERE {where}", params),
            batches=self._count(f"batches b WHERE {batch_where}", batch_params),
            **counted,
        )

    def prune_jobs(self, scope: PruneScope, after_id: int, limit: int) -> tuple[Pruned, int | None]:
        """Delete up to `limit` prunable jobs with ids above `after_id` and what hangs off
        them; returns what was deleted and the last id picked (None: no more after it).

        The pick walks ids upwards from `after_id`, so a whole prune reads each job once.
        """
        where, params = _prunable(scope)
        ids = [
            row["id"]
            for row in self._run(
                f"SELECT j.id FROM {self._walk} WHERE j.id > ? AND {where} ORDER BY j.id LIMIT ?"
                f"{self._lock}",
                [after_id, *params, limit],
            )
        ]
        if not ids:
            return Pruned(), None
        marks = _marks(ids)
        counted = {}
        for field, table in _JOB_CHILDREN:
            deleted = self._run(f"DELETE FROM {table} WHERE job_id IN ({marks})", ids).rowcount
            if field is not None:
                counted[field] = deleted
        jobs = self._run(f"DELETE FROM jobs WHERE id IN ({marks})", ids).rowcount
        return Pruned(jobs=jobs, **counted), ids[-1] if len(ids) == limit else None

    def prune_batches(self, scope: PruneScope, limit: int) -> int:
        """Delete up to `limit` prunable batches with their own events, tags and submit
        leases; their resubmitted children and QA verdicts stay, unlinked from them."""
        where, params = _prunable_batches(scope)
        ids = [
            row["id"]
            for row in self._run(
                f"SELECT b.id FROM batches b WHERE {where} ORDER BY b.id LIMIT ?", [*params, limit]
            )
        ]
        if not ids:
            return 0
        marks = _marks(ids)
        for statement in (
            f"UPDATE batches SET parent_id = NULL WHERE parent_id IN ({marks})",
            f"UPDATE qa_results SET batch_id = NULL WHERE batch_id IN ({marks})",
            f"DELETE FROM events WHERE batch_id IN ({marks}) AND job_id IS NULL",
            f"DELETE FROM batch_submit_leases WHERE batch_id IN ({marks})",
            f"DELETE FROM batch_tags WHERE batch_id IN ({marks})",
        ):
            self._run(statement, ids)
        return int(self._run(f"DELETE FROM batches WHERE id IN ({marks})", ids).rowcount)
