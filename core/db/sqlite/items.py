"""Batch items on SQLite: the multi-row writes (staged in a temp table, with planner hints)
and the streaming readers; the rest is shared (`core/db/sqlitems.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from batchdash.core.batch_records import ErrorMatch, ItemResult
from batchdash.core.db.sqlite.batches import SqliteBatches
from batchdash.core.db.sqlite.jobs import _insert_jobs, _set_results
from batchdash.core.db.sqlitems import LEAVE_NOTHING_OUT, SqlBatchItems
from batchdash.core.db.sqlshared import (
    ITEM_PENDING_SQL,
    JOB_PENDING_SQL,
    _loads,
    same_sql,
)


class SqliteBatchItems(SqlBatchItems):
    """Batch items on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql, SqliteBatches(conn))

    def existing_job_keys(self, queue: str, keys: Sequence[str]) -> dict[str, int]:
        """Which of these keys already name a job of the queue (key → job id)."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._conn.execute(
                "SELECT key, id FROM jobs WHERE queue = ? "
                f"AND key IN ({','.join('?' * len(part))})",
                (queue, *part),
            )
            found.update((r["key"], r["id"]) for r in rows)
        return found

    def add_batch_lines(
        self,
        batch_id: int,
        queue: str,
        handler: str,
        lines: Sequence[tuple[int, str, str, str]],
        now: float,
    ) -> None:
        """Insert (line_no, custom_id, job key, payload JSON) as items and their pending jobs."""
        _insert_jobs(
            self._conn,
            queue,
            handler,
            ((key, payload, 0, 1, 1) for _, _, key, payload in lines),
            now,
            batch_id,
        )
        self._conn.executemany(
            "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
            "VALUES (?, ?, (SELECT id FROM jobs WHERE queue = ? AND key = ?), ?) "
            "ON CONFLICT (batch_id, custom_id) DO NOTHING",
            ((batch_id, custom_id, queue, key, line_no) for line_no, custom_id, key, _ in lines),
        )

    def batch_upload_rows(self, batch_id: int) -> Iterator[tuple[str, str]]:
        """(custom_id, payload JSON) of a batch's lines in upload order, streamed."""
        for row in self._conn.execute(
            "SELECT i.custom_id, p.payload FROM batch_items i "
            "JOIN job_payloads p ON p.job_id = i.job_id WHERE i.batch_id = ? ORDER BY i.line_no",
            (batch_id,),
        ):
            yield row[0], row[1]

    def apply_item_results(
        self,
        batch_id: int,
        results: Sequence[tuple[ItemResult, str, str | None]],
        now: float,
    ) -> None:
        """Record (result, job status, job error kind) per custom_id, set-based and idempotent.

        Only items still `pending` change, and only jobs still pending under this batch (a
        job resubmitted to a child batch belongs to the child): running it twice is a no-op.
        """
        self._conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_items (custom_id TEXT PRIMARY KEY, "
            "job_id INTEGER, outcome TEXT, status_code INTEGER, error_code TEXT, "
            "error_message TEXT, input_tokens INTEGER, output_tokens INTEGER, "
            "cost REAL, job_status TEXT, error_kind TEXT)"
        )
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS temp.ingest_items_job ON ingest_items (job_id)"
        )
        self._conn.execute("DELETE FROM temp.ingest_items")
        # The ~2 KB result texts stay out of the temp table: copying them through it twice
        # (and spilling it to a temp file) cost more than the rest of the staging.
        self._conn.executemany(
            "INSERT OR IGNORE INTO temp.ingest_items VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    r.custom_id,
                    r.outcome,
                    r.status_code,
                    r.error_code,
                    r.error_message,
                    r.input_tokens,
                    r.output_tokens,
                    r.cost,
                    status,
                    kind,
                )
                for r, status, kind in results
            ),
        )
        # Keep only lines whose item is still pending: this is what makes a re-run a no-op.
        self._conn.execute(
            "UPDATE temp.ingest_items SET job_id = (SELECT i.job_id FROM batch_items i "
            "WHERE i.batch_id = ? AND i.custom_id = ingest_items.custom_id "
            f"AND i.outcome = {ITEM_PENDING_SQL})",
            (batch_id,),
        )
        self._conn.execute("DELETE FROM temp.ingest_items WHERE job_id IS NULL")
        live_jobs = (
            "FROM temp.ingest_items s CROSS JOIN jobs j ON j.id = s.job_id "
            f"WHERE j.batch_id = ? AND j.status = {JOB_PENDING_SQL}"
        )
        self._conn.execute(
            "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT ?, s.job_status, j.id, ?, j.queue, coalesce(s.error_message, 'batch result') "
            + live_jobs,
            (now, batch_id, batch_id),
        )
        texts: dict[str, str | None] = {}
        for r, _, _ in results:
            texts.setdefault(r.custom_id, r.result_json)  # the first line wins, as in the stage
        # In job id order: the results' job_id index then grows at its end, not at random.
        rows = self._conn.execute(
            f"SELECT s.custom_id, j.id {live_jobs} ORDER BY j.id", (batch_id,)
        )
        _set_results(self._conn, [(job_id, texts[custom_id]) for custom_id, job_id in rows])
        # Unary + keeps the planner on the rowid lookups instead of scanning the batch's jobs.
        self._conn.execute(
            "UPDATE jobs SET (status, error, error_kind, input_tokens, output_tokens, cost) = "
            "(SELECT job_status, error_message, error_kind, input_tokens, output_tokens, cost "
            "FROM temp.ingest_items WHERE job_id = jobs.id), finished_at = ?, updated_at = ? "
            "WHERE id IN (SELECT job_id FROM temp.ingest_items) AND +batch_id = ? "
            f"AND +status = {JOB_PENDING_SQL}",
            (now, now, batch_id),
        )
        self._conn.execute(
            "UPDATE batch_items SET (outcome, status_code, error_code, error_message, "
            "input_tokens, output_tokens, cost) = (SELECT outcome, status_code, error_code, "
            "error_message, input_tokens, output_tokens, cost FROM temp.ingest_items s "
            "WHERE s.custom_id = batch_items.custom_id) "
            "WHERE batch_id = ? AND custom_id IN (SELECT custom_id FROM temp.ingest_items)",
            (batch_id,),
        )
        self._conn.execute("DELETE FROM temp.ingest_items")

    def resubmit_items(
        self,
        parent_id: int,
        child_id: int,
        outcomes: Sequence[str],
        now: float,
        *,
        leave_out: ErrorMatch = LEAVE_NOTHING_OUT,
    ) -> int:
        """Give a child batch the parent's items of these outcomes, and move their jobs to it.

        Jobs go back to pending under the child (one more attempt); only jobs still owned by
        the parent move, and none whose item error matches `leave_out`. Returns how many lines
        the child has.
        """
        self._conn.execute(*self._copy_items(parent_id, child_id, outcomes, leave_out))
        moved = "SELECT job_id FROM batch_items WHERE batch_id = ?"
        self._conn.execute(
            f"INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            f"SELECT ?, 'resubmitted', id, ?, queue, 'batch ' || ? || ' → ' || ? "
            f"FROM jobs WHERE id IN ({moved})",
            (now, child_id, parent_id, child_id, child_id),
        )
        self._conn.execute(
            f"UPDATE jobs SET batch_id = ?, status = {JOB_PENDING_SQL}, attempts = attempts + 1, "
            f"max_attempts = max(max_attempts, attempts + 1), error = NULL, "
            f"error_kind = NULL, input_tokens = NULL, output_tokens = NULL, cost = NULL, "
            f"finished_at = NULL, updated_at = ? WHERE id IN ({moved})",
            (child_id, now, child_id),
        )
        self._conn.execute(f"DELETE FROM job_results WHERE job_id IN ({moved})", (child_id,))
        return self._set_child_total(child_id, now)

    def batch_result_rows(self, batch_id: int) -> Iterator[dict[str, Any]]:
        """Each item of a batch with its job's current result, in line order, streamed."""
        for row in self._conn.execute(
            "SELECT i.custom_id, i.line_no, i.outcome, i.status_code, i.error_code, "
            "i.error_message, i.input_tokens, i.output_tokens, i.cost, i.job_id, j.status, "
            "r.result FROM batch_items i LEFT JOIN jobs j ON j.id = i.job_id "
            "LEFT JOIN job_results r ON r.job_id = i.job_id "
            "WHERE i.batch_id = ? ORDER BY i.line_no, i.custom_id",
            (batch_id,),
        ):
            data = dict(row)
            data["result"] = _loads(data["result"])
            yield data
