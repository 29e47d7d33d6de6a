"""PostgreSQL repository: PgBatchItems, a batch's lines, result ingestion and resubmission.

Same behaviour as `core/db/sqlite/items.py`. Multi-row writes are set-based: each call is
one statement over `unnest`ed arrays (a chunk of lines or results), never a loop of rows.
Whatever ingests results into a batch (`apply_item_results`, `close_ingest`,
`resubmit_items`) first locks the batch row (`lock_batch`), so pollers on two hosts take
turns and the second finds nothing left to write. The streaming readers fetch keyset pages
in line order, so a batch of any size never sits in memory whole, whether they are
consumed inside the store's read call (one snapshot) or after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.batch_records import ErrorMatch, ItemResult
from batchdash.core.db.postgres.batches import (
    PgBatches,
    lock_batch,
    one_row,
)
from batchdash.core.db.postgres.queues import PgQueues
from batchdash.core.db.sqlshared import (
    ITEM_PENDING_SQL,
    JOB_PENDING_SQL,
    RETRYABLE_JOB_STATUSES_SQL,
    _build,
    _loads,
    _where,
    ingest_totals,
)
from batchdash.core.models import BatchItem, JobFilter

if TYPE_CHECKING:
    import psycopg

#: Rows per page of the streaming readers.
_PAGE = 1000

#: Items of batch `%s` with one of the outcomes `%s` whose job that batch still owns.
_OWNED_ITEMS = (
    "FROM batch_items i JOIN jobs j ON j.id = i.job_id WHERE i.batch_id = %s "
    "AND j.batch_id = i.batch_id AND i.outcome = ANY(%s)"
)

#: Line order, as SQLite sorts it (custom ids compared byte-wise, whatever the collation).
_LINE_ORDER = 'i.line_no, i.custom_id COLLATE "C"'

#: The page after line (`%s`, custom id `%s`) in line order.
_AFTER_LINE = '(i.line_no > %s OR (i.line_no = %s AND i.custom_id COLLATE "C" > %s))'


def _error_match_sql(match: ErrorMatch) -> tuple[str, list[Any]]:
    """A condition on items `i` (never NULL: items without an error do not match)."""
    parts, params = ["false"], list[Any]()
    for column, values in (("status_code", match.status_codes), ("error_code", match.error_codes)):
        if values:
            parts.append(f"coalesce(i.{column} = ANY(%s), false)")
            params.append(list(values))
    return f"({' OR '.join(parts)})", params


#: An ErrorMatch that matches no item: resubmit every item of the outcomes asked for.
_LEAVE_NOTHING_OUT = ErrorMatch()


#: Lines (line_no, custom_id, job key, payload arrays) of a batch as its items and pending
#: jobs (one attempt, under the batch) with their payloads, in one statement. Keys the queue
#: already has keep their job (and its payload; within the lines the first of a repeated
#: key wins), and the item points at it. Ids come from the identity column in line order.
_INSERT_LINES = (
    "WITH line AS (SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[]) "
    "WITH ORDINALITY AS t(line_no, custom_id, key, payload, n)), "
    "new AS (INSERT INTO jobs (queue, key, handler, status, priority, attempts, "
    "max_attempts, run_after, created_at, updated_at, batch_id) "
    f"SELECT %s, key, %s, {JOB_PENDING_SQL}, 0, 1, 1, 0, %s, %s, %s "
    "FROM (SELECT DISTINCT ON (key) key, n FROM line ORDER BY key, n) first ORDER BY n "
    "ON CONFLICT (queue, key) DO NOTHING RETURNING id, key), "
    "payload AS (INSERT INTO job_payloads (job_id, payload) "
    "SELECT DISTINCT ON (new.id) new.id, line.payload FROM new JOIN line USING (key) "
    "ORDER BY new.id, line.n) "
    "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
    "SELECT %s, line.custom_id, coalesce(new.id, old.id), line.line_no FROM line "
    "LEFT JOIN new USING (key) LEFT JOIN jobs old ON old.queue = %s AND old.key = line.key "
    "ORDER BY line.n ON CONFLICT (batch_id, custom_id) DO NOTHING"
)


class PgBatchItems:
    """The items repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def batch_outcome_counts(self, batch_id: int) -> dict[str, int]:
        """How many of a batch's items ended in each outcome."""
        rows = self._conn.execute(
            "SELECT outcome, count(*) AS n FROM batch_items WHERE batch_id = %s GROUP BY outcome",
            (batch_id,),
        )
        return {r["outcome"]: r["n"] for r in rows}

    def list_batch_items(
        self,
        batch_id: int,
        *,
        outcomes: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[BatchItem]:
        """A batch's items (optionally of some outcomes), in line order."""
        sql = "SELECT * FROM batch_items i WHERE i.batch_id = %s"
        params: list[Any] = [batch_id]
        if outcomes:
            sql += " AND i.outcome = ANY(%s)"
            params.append(list(outcomes))
        sql += f" ORDER BY {_LINE_ORDER}"
        if limit is not None:
            sql += " LIMIT %s OFFSET %s"
            params.extend([limit, offset])
        return [_build(BatchItem, r) for r in self._conn.execute(sql, params)]

    def existing_job_keys(self, queue: str, keys: Sequence[str]) -> dict[str, int]:
        """Which of these keys already name a job of the queue (key → job id)."""
        rows = self._conn.execute(
            "SELECT key, id FROM jobs WHERE queue = %s AND key = ANY(%s)", (queue, list(keys))
        )
        return {r["key"]: r["id"] for r in rows}

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
            _INSERT_LINES, (*columns, queue, handler, now, now, batch_id, batch_id, queue)
        )

    def batch_lines_enqueued(self, batch_id: int, now: float) -> None:
        """Write the `enqueued` event of every job of a freshly recorded batch."""
        self._conn.execute(
            "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT %s, 'enqueued', id, batch_id, queue, 'remote batch ' || batch_id "
            "FROM jobs WHERE batch_id = %s ORDER BY id",
            (now, batch_id),
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
        lock_batch(self._conn, batch_id)
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

    def pending_item_ids(self, batch_id: int) -> list[str]:
        """custom_ids of a batch's items that no result has mentioned yet."""
        rows = self._conn.execute(
            "SELECT custom_id FROM batch_items WHERE batch_id = %s "
            f"AND outcome = {ITEM_PENDING_SQL}",
            (batch_id,),
        )
        return [r["custom_id"] for r in rows]

    def batch_item_lines(self, batch_id: int, line_nos: Sequence[int]) -> list[tuple[str, int]]:
        """(custom_id, line_no) of the items on these upload lines."""
        if not line_nos:
            return []
        rows = self._conn.execute(
            "SELECT custom_id, line_no FROM batch_items WHERE batch_id = %s AND line_no = ANY(%s)",
            (batch_id, list(line_nos)),
        )
        return [(r["custom_id"], r["line_no"]) for r in rows]

    def close_ingest(self, batch_id: int, state: str, now: float) -> bool:
        """Totals from the items onto the batch, the final state, and `ingested_at`.

        Under the batch's lock, claimed by a compare-and-set on `ingested_at`: a batch is
        closed (and gets its `batch_ingested` event) once. True if closed now.
        """
        lock_batch(self._conn, batch_id)
        claimed = self._conn.execute(
            "UPDATE batches SET ingested_at = %s WHERE id = %s AND ingested_at IS NULL",
            (now, batch_id),
        ).rowcount
        if not claimed:
            return False
        sums = one_row(
            self._conn,
            "SELECT coalesce(sum(input_tokens), 0) AS input_tokens, "
            "coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost, "
            "count(*) AS n FROM batch_items WHERE batch_id = %s",
            (batch_id,),
        )
        fields, event = ingest_totals(sums, self.batch_outcome_counts(batch_id), state)
        PgBatches(self._conn).update_batch(batch_id, fields, now, event)
        return True

    def count_batch_items(self, batch_id: int) -> int:
        """How many lines (items) a batch has locally."""
        sql = "SELECT count(*) AS n FROM batch_items WHERE batch_id = %s"
        return int(one_row(self._conn, sql, (batch_id,))["n"])

    def resubmit_items(
        self,
        parent_id: int,
        child_id: int,
        outcomes: Sequence[str],
        now: float,
        *,
        leave_out: ErrorMatch = _LEAVE_NOTHING_OUT,
    ) -> int:
        """Give a child batch the parent's items of these outcomes, and move their jobs to it.

        Under the parent's lock, so an ingestion or another resubmission of the parent
        waits. Jobs go back to pending under the child (one more attempt); only jobs still
        owned by the parent move, and none whose item error matches `leave_out`. Returns
        how many lines the child has.
        """
        lock_batch(self._conn, parent_id)
        skip, skip_params = _error_match_sql(leave_out)
        moved = self._conn.execute(
            "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
            f"SELECT %s, i.custom_id, i.job_id, row_number() OVER (ORDER BY {_LINE_ORDER}) "
            f"{_OWNED_ITEMS} AND NOT {skip} RETURNING job_id",
            (child_id, parent_id, list(outcomes), *skip_params),
        ).fetchall()
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
        total = self.count_batch_items(child_id)
        PgBatches(self._conn).update_batch(child_id, {"total": total}, now)
        return total

    def resubmittable_counts(
        self, batch_id: int, outcomes: Sequence[str], special: ErrorMatch
    ) -> tuple[int, int]:
        """(lines a resubmit would send, how many of them match `special`), jobs still owned."""
        match, params = _error_match_sql(special)
        row = one_row(
            self._conn,
            f"SELECT count(*) AS n, count(*) FILTER (WHERE {match}) AS special {_OWNED_ITEMS}",
            (*params, batch_id, list(outcomes)),
        )
        return int(row["n"]), int(row["special"])

    def remote_job_batches(self, flt: JobFilter) -> dict[int, int]:
        """Batch id → how many of the failed/cancelled jobs matching `flt` that batch ran."""
        where, params = _where(flt, mark="%s", like="ILIKE")
        rows = self._conn.execute(
            "SELECT j.batch_id, count(*) AS n FROM jobs j "
            f"WHERE j.status IN {RETRYABLE_JOB_STATUSES_SQL} "
            f"AND j.batch_id IS NOT NULL AND {where} GROUP BY j.batch_id ORDER BY j.batch_id",
            params,
        )
        return {r["batch_id"]: r["n"] for r in rows}

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
