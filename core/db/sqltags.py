"""The tags repository, written once for both back ends (shared SQL with `?` placeholders,
converted by the back end's `sql` function, as `core/db/sqlqueues.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from batchdash.core.db.sqlshared import SharedSqlRepository
from batchdash.core.models import NewJob

#: (tag, key) pairs per statement of `tag_jobs`.
_TAG_CHUNK = 500

#: The id of the job of a queue (`?`) and key (`v.column2`), from the table that keeps keys
#: unique: jobs on SQLite, job_search on PostgreSQL (its migration 0014).
JOBS_BY_KEY = "SELECT j.id FROM jobs j WHERE j.queue = ? AND j.key = v.column2"


class SqlTags(SharedSqlRepository):
    """Tags on one connection (SQLite's or psycopg's)."""

    def __init__(self, conn: Any, sql: Callable[[str], str], by_key: str = JOBS_BY_KEY) -> None:
        super().__init__(conn, sql)
        self._by_key = by_key

    def _many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            self._conn.cursor().executemany(self._sql(sql), rows)

    def tag_jobs(self, queue: str, jobs: Sequence[NewJob]) -> None:
        """Give these jobs of the queue (found by key) their `NewJob.tags`.

        500 (tag, key) pairs per statement, each job found by its own (queue, key) lookup:
        as one `key IN (…)` PostgreSQL's planner, its statistics not yet aware of the jobs
        just enqueued, scanned the whole queue per statement (15 s for 100k tags).
        """
        pairs = [value for job in jobs for tag in job.tags for value in (tag, job.key)]
        for start in range(0, len(pairs), 2 * _TAG_CHUNK):
            chunk = pairs[start : start + 2 * _TAG_CHUNK]
            values = ",".join(["(?, ?)"] * (len(chunk) // 2))
            self._conn.execute(
                self._sql(
                    "INSERT INTO job_tags (tag, job_id) SELECT tag, job_id FROM ("
                    f"SELECT v.column1 AS tag, ({self._by_key}) AS job_id "
                    f"FROM (VALUES {values}) AS v) AS found "
                    "WHERE job_id IS NOT NULL ON CONFLICT DO NOTHING"
                ),
                [queue, *chunk],
            )

    def tag_batches(self, batch_ids: Sequence[int], tags: Sequence[str]) -> None:
        """Tag these batches and every job they hold (tags already there stay once)."""
        pairs = [(tag, batch_id) for batch_id in batch_ids for tag in tags]
        self._many(
            "INSERT INTO batch_tags (tag, batch_id) VALUES (?, ?) ON CONFLICT DO NOTHING", pairs
        )
        self._many(
            "INSERT INTO job_tags (tag, job_id) SELECT ?, id FROM jobs WHERE batch_id = ? "
            "ON CONFLICT DO NOTHING",
            pairs,
        )

    def job_tags(self, job_ids: Sequence[int]) -> dict[int, list[str]]:
        """The tags of each of these jobs, sorted (jobs without tags are left out)."""
        return self._tags("job_tags", "job_id", job_ids)

    def batch_tags(self, batch_ids: Sequence[int]) -> dict[int, list[str]]:
        """The tags of each of these batches, sorted (batches without tags are left out)."""
        return self._tags("batch_tags", "batch_id", batch_ids)

    def _tags(self, table: str, column: str, ids: Sequence[int]) -> dict[int, list[str]]:
        """`table` and `column` are this module's own names, never input."""
        found: dict[int, list[str]] = {}
        if not ids:
            return found
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            self._sql(
                f"SELECT {column} AS id, tag FROM {table} WHERE {column} IN ({marks}) "
                f"ORDER BY {column}, tag"
            ),
            list(ids),
        )
        for row in rows:
            found.setdefault(row["id"], []).append(row["tag"])
        return found
