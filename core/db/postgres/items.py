"""PostgreSQL repository: PgBatchItems, a batch's lines, result ingestion and resubmission.

What both back ends do alike is shared (`core/db/sqlitems.py`). Multi-row writes are
set-based: each call is one statement over `unnest`ed arrays (a chunk of lines or results),
never a loop of rows.
Whatever ingests results into a batch (`apply_item_results`, `close_ingest`,
`resubmit_items`) first locks the batch row (`lock_batch`), so pollers on two hosts take
turns and the second finds nothing left to write. The streaming readers fetch keyset pages
in line order, so a batch of any size never sits in memory whole, whether they are
consumed inside the store's read call (one snapshot) or after it. The SQL only this
back end runs is written with psycopg's own `%s` placeholders.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.batch_records import ErrorMatch, ItemResult
from batchdash.core.db.postgres.batches import PgBatches, lock_batch
from batchdash.core.db.postgres.queues import PgQueues
from batchdash.core.db.sqlitems import LEAVE_NOTHING_OUT, SqlBatchItems
from batchdash.core.db.sqlshared import (
    ITEM_PENDING_SQL,
    JOB_PENDING_SQL,
    _loads,
    pg_sql,
)

if TYPE_CHECKING:
    import psycopg

#: Rows per page of the streaming readers.
_PAGE = 1000

#: Line order, as SQLite sorts it (custom ids compared byte-wise, whatever the collation).
_LINE_ORDER = 'i.line_no, i.custom_id COLLATE "C"'

#: The page after line (`%s`, custom id `%s`) in line order.
_AFTER_LINE = '(i.line_no > %s OR (i.line_no = %s AND i.custom_id COLLATE "C" > %s))'


#: Lines (line_no, custom_id, job key, payload arrays) of a batch as its items and pending
#: jobs (one attempt, under the batch) with their payloads, in one statement. Keys the queue
#: already has keep their job (and its payload; within the lines the first of a repeated
#: key wins), and the item points at it. Ids come from the identity column in line order.
#: Keys are looked up in job_search, where they are unique (a concurrent insert of the same
#: new key fails there, and the store runs the transaction again: `connection.is_busy`).
_INSERT_LINES = (
    "WITH line AS (SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[]) "
    "WITH ORDINALITY AS t(line_no, custom_id, key, payload, n)), "
    "new AS (INSERT INTO jobs (queue, key, handler, status, priority, attempts, "
    "max_attempts, run_after, created_at, updated_at, batch_id) "
    f"SELECT %s, key, %s, {JOB_PENDING_SQL}, 0, 1, 1, 0, %s, %s, %s "
    "FROM (SELECT DISTINCT ON (key) key, n FROM line ORDER BY key, n) first "
    "WHERE NOT EXISTS (SELECT 1 FROM job_search s WHERE s.queue = %s AND s.key = first.key) "
    "ORDER BY n RETURNING id, key), "
    "payload AS (INSERT INTO job_payloads (job_id, payload) "
    "SELECT DISTINCT ON (new.id) new.id, line.payload FROM new JOIN line USING (key) "
    "ORDER BY new.id, line.n) "
    "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
    "SELECT %s, line.custom_id, coalesce(new.id, old.job_id), line.line_no FROM line "
    "LEFT JOIN new USING (key) LEFT JOIN job_search old ON old.queue = %s AND old.key = line.key "
    "ORDER BY line.n ON CONFLICT (batch_id, custom_id) DO NOTHING"
)


class PgBatchItems(SqlBatchItems):
    """The items repository on one psycopg connection."""

    LINE_ORDER = _LINE_ORDER
    ARRAYS = True
    LIKE = "ILIKE"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql, PgBatches(conn))

    def _lock(self, batch_id: int) -> None:
        lock_batch(self._conn, batch_id)

    def existing_job_keys(self, queue: str, keys: Sequence[str]) -> dict[str, int]:
        """Which of these keys already name a job of the queue (key → job id)."""
        rows = self._conn.execute(
            "SELECT key, job_id FROM job_search WHERE queue = %s AND key = ANY(%s)",
            (queue, list(keys)),
        )
        return {r["key"]: r["job_id"] for r in rows}

    def add_batch_lines(
        self,
        batch_id: int,
        queue: str,
        handler: str,
        lines: Sequence[tuple[int, str, str, str]],
        now: float,
    ) -> None:
        """Insert (line_no, custom_id, job key, payload JSON) as items and their pending jobs."""
        PgQueues(self._conn).ensure_queue(queue, now)
        columns = [list(column) for column in zip(*lines, strict=True)] or [[], [], [], []]
        self._conn.execute(
            _INSERT_LINES,
            (*columns, queue, handler, now, now, batch_id, queue, batch_id, queue),
        )

    def _pages(self, columns: str, joins: str, batch_id: int) -> Iterator[dict[str, Any]]:
        """A batch's item rows (`i`, with `joins`) in line order, one keyset page at a time."""
        select = f"SELECT i.line_no AS page_line, i.custom_id AS page_id, {columns} {joins} "
        order = f" ORDER BY {_LINE_ORDER} LIMIT {_PAGE}"
        rows = self._conn.execute(select + "WHERE i.batch_id = %s" + order, (batch_id,)).fetchall()
        while rows:
            yield from rows
            last = rows[-1]
            rows = self._conn.execute(
                select + f"WHERE i.batch_id = %s AND {_AFTER_LINE}" + order,
                (batch_id, last["page_line"], last["page_line"], last["page_id"]),
            ).fetchall()

    def batch_upload_rows(self, batch_id: int) -> Iterator[tuple[str, str]]:
        """(custom_id, payload JSON) of a batch's lines in upload order, streamed."""
        for row in self._pages(
            "p.payload", "FROM batch_items i JOIN job_payloads p ON p.job_id = i.job_id", batch_id
        ):
            yield row["page_id"], row["payload"]

    def apply_item_results(
        self,
        batch_id: int,
        results: Sequence[tuple[ItemResult, str, str | None]],
        now: float,
    ) -> None:
        """Record (result, job status, job error kind) per custom_id, set-based and idempotent.

        Only items still `pending` change, and only jobs still pending under this batch (a
        job resubmitted to a child batch belongs to the child): running it twice is a no-op.
        One statement under the batch's lock; the first line of a repeated custom_id wins.
        """
        self._lock(batch_id)
        columns = list(zip(*((*_result_fields(r), s, k) for r, s, k in results), strict=True))
        if not columns:
            return
        self._conn.execute(
            "WITH given AS (SELECT DISTINCT ON (custom_id) * FROM unnest(%s::text[], "
            "%s::text[], %s::int[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], "
            "%s::float8[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS t(custom_id, "
            "outcome, status_code, error_code, error_message, input_tokens, output_tokens, "
            "cost, result, job_status, error_kind, n) ORDER BY custom_id, n), "
            # Only lines whose item is still pending: this is what makes a re-run a no-op.
            "staged AS (SELECT g.*, i.job_id FROM given g JOIN batch_items i ON "
            f"i.batch_id = %s AND i.custom_id = g.custom_id AND i.outcome = {ITEM_PENDING_SQL}), "
            "live AS (UPDATE jobs j SET status = s.job_status, error = s.error_message, "
            "error_kind = s.error_kind, input_tokens = s.input_tokens, "
            "output_tokens = s.output_tokens, cost = s.cost, finished_at = %s, updated_at = %s "
            f"FROM staged s WHERE j.id = s.job_id AND j.batch_id = %s AND j.status = "
            f"{JOB_PENDING_SQL} RETURNING j.id, j.queue, s.job_status, s.error_message, "
            "s.result), "
            "noted AS (INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT %s, job_status, id, %s, queue, coalesce(error_message, 'batch result') "
            "FROM live ORDER BY id), "
            "kept AS (INSERT INTO job_results (job_id, result) SELECT id, result FROM live "
            "WHERE result IS NOT NULL ORDER BY id "
            "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result), "
            "cleared AS (DELETE FROM job_results WHERE job_id IN "
            "(SELECT id FROM live WHERE result IS NULL)) "
            "UPDATE batch_items b SET outcome = s.outcome, status_code = s.status_code, "
            "error_code = s.error_code, error_message = s.error_message, "
            "input_tokens = s.input_tokens, output_tokens = s.output_tokens, cost = s.cost "
            "FROM staged s WHERE b.batch_id = %s AND b.custom_id = s.custom_id "
            f"AND b.outcome = {ITEM_PENDING_SQL}",
            (*map(list, columns), batch_id, now, now, batch_id, now, batch_id, batch_id),
        )

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

        Under the parent's lock, so an ingestion or another resubmission of the parent
        waits. Jobs go back to pending under the child (one more attempt); only jobs still
        owned by the parent move, and none whose item error matches `leave_out`. Returns
        how many lines the child has.
        """
        self._lock(parent_id)
        copy, params = self._copy_items(parent_id, child_id, outcomes, leave_out)
        moved = self._run(copy + " RETURNING job_id", params).fetchall()
        job_ids = [r["job_id"] for r in moved]
        self._conn.execute(
            "WITH moved AS (UPDATE jobs SET batch_id = %s, "
            f"status = {JOB_PENDING_SQL}, attempts = attempts + 1, "
            "max_attempts = greatest(max_attempts, attempts + 1), error = NULL, "
            "error_kind = NULL, input_tokens = NULL, output_tokens = NULL, cost = NULL, "
            "finished_at = NULL, updated_at = %s WHERE id = ANY(%s) RETURNING id, queue), "
            "cleared AS (DELETE FROM job_results WHERE job_id = ANY(%s)) "
            "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT %s, 'resubmitted', id, %s, queue, %s FROM moved ORDER BY id",
            (child_id, now, job_ids, job_ids, now, child_id, f"batch {parent_id} → {child_id}"),
        )
        return self._set_child_total(child_id, now)

    def batch_result_rows(self, batch_id: int) -> Iterator[dict[str, Any]]:
        """Each item of a batch with its job's current result, in line order, streamed."""
        for row in self._pages(
            "i.custom_id, i.line_no, i.outcome, i.status_code, i.error_code, "
            "i.error_message, i.input_tokens, i.output_tokens, i.cost, i.job_id, j.status, "
            "r.result",
            "FROM batch_items i LEFT JOIN jobs j ON j.id = i.job_id "
            "LEFT JOIN job_results r ON r.job_id = i.job_id",
            batch_id,
        ):
            data = {k: v for k, v in row.items() if k not in ("page_line", "page_id")}
            data["result"] = _loads(data["result"])
            yield data


def _result_fields(r: ItemResult) -> tuple[Any, ...]:
    """An item result's columns, in the order `apply_item_results` unnests them."""
    return (
        r.custom_id,
        r.outcome,
        r.status_code,
        r.error_code,
        r.error_message,
        r.input_tokens,
        r.output_tokens,
        r.cost,
        r.result_json,
    )
