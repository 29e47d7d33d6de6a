"""The batch items repository's shared half, written once for both back ends.

Its SQL is the dialect SQLite and PostgreSQL share, with `?` placeholders that the back
end's `sql` function converts (see `core/db/sqlevents.py`). What stays per back end, in
`sqlite/items.py` and `postgres/items.py`: the multi-row writes (SQLite stages rows in a
temp table with planner hints; PostgreSQL writes one statement over `unnest`ed arrays under
the batch's row lock) and the streaming readers (PostgreSQL pages by keyset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from batchdash.core.batch_records import ErrorMatch
from batchdash.core.db.sqlbatches import SqlBatches
from batchdash.core.db.sqlshared import (
    ITEM_PENDING_SQL,
    RETRYABLE_JOB_STATUSES_SQL,
    SharedSqlRepository,
    _build,
    _where,
    ingest_totals,
    member_of,
)
from batchdash.core.models import BatchItem, JobFilter

#: An ErrorMatch that matches no item: resubmit every item of the outcomes asked for.
LEAVE_NOTHING_OUT = ErrorMatch()


class SqlBatchItems(SharedSqlRepository):
    """Batch items on one connection (sqlite3 or psycopg: both `execute` alike)."""

    #: Items `i` in line order, custom ids compared byte-wise (SQLite's own text order).
    LINE_ORDER = "i.line_no, i.custom_id"
    #: The case-insensitive LIKE of job filters (SQLite's LIKE already ignores ASCII case).
    LIKE = "LIKE"

    def __init__(self, conn: Any, sql: Callable[[str], str], batches: SqlBatches) -> None:
        super().__init__(conn, sql)
        self._batches = batches

    def _lock(self, batch_id: int) -> None:
        """Hold the batch's row until the transaction ends, where writers are concurrent."""

    def _owned_items(self, outcomes: Sequence[str]) -> tuple[str, list[Any]]:
        """Items of batch `?` of these outcomes whose job that batch still owns (`i`, `j`);
        the parameters after the batch id."""
        among, params = member_of("i.outcome", outcomes, self.ARRAYS)
        return (
            "FROM batch_items i JOIN jobs j ON j.id = i.job_id WHERE i.batch_id = ? "
            f"AND j.batch_id = i.batch_id AND {among}",
            params,
        )

    def _error_match(self, match: ErrorMatch) -> tuple[str, list[Any]]:
        """A condition on items `i` (never NULL: items without an error do not match)."""
        parts, params = ["FALSE"], list[Any]()
        for column, values in (
            ("status_code", match.status_codes),
            ("error_code", match.error_codes),
        ):
            if values:
                among, more = member_of(f"i.{column}", values, self.ARRAYS)
                parts.append(f"coalesce({among}, FALSE)")
                params.extend(more)
        return f"({' OR '.join(parts)})", params

    def _copy_items(
        self, parent_id: int, child_id: int, outcomes: Sequence[str], leave_out: ErrorMatch
    ) -> tuple[str, list[Any]]:
        """The INSERT giving a child batch the parent's owned items of these outcomes, none
        whose error matches `leave_out`, numbered in line order; returns the SQL and params."""
        skip, skip_params = self._error_match(leave_out)
        owned, owned_params = self._owned_items(outcomes)
        return (
            "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
            f"SELECT ?, i.custom_id, i.job_id, row_number() OVER (ORDER BY {self.LINE_ORDER}) "
            f"{owned} AND NOT {skip}",
            [child_id, parent_id, *owned_params, *skip_params],
        )

    def _set_child_total(self, child_id: int, now: float) -> int:
        """Store how many lines a resubmitted child batch has now; returns that count."""
        total = self.count_batch_items(child_id)
        self._batches.update_batch(child_id, {"total": total}, now)
        return total

    def batch_outcome_counts(self, batch_id: int) -> dict[str, int]:
        """How many of a batch's items ended in each outcome."""
        rows = self._run(
            "SELECT outcome, count(*) AS n FROM batch_items WHERE batch_id = ? GROUP BY outcome",
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
        sql = "SELECT * FROM batch_items i WHERE i.batch_id = ?"
        params: list[Any] = [batch_id]
        if outcomes:
            among, more = member_of("i.outcome", outcomes, self.ARRAYS)
            sql += f" AND {among}"
            params.extend(more)
        sql += f" ORDER BY {self.LINE_ORDER}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params.extend([limit, offset])
        return [_build(BatchItem, r) for r in self._run(sql, params)]

    def batch_lines_enqueued(self, batch_id: int, now: float) -> None:
        """Write the `enqueued` event of every job of a freshly recorded batch."""
        self._run(
            "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT ?, 'enqueued', id, batch_id, queue, 'remote batch ' || batch_id "
            "FROM jobs WHERE batch_id = ? ORDER BY id",
            (now, batch_id),
        )

    def pending_item_ids(self, batch_id: int) -> list[str]:
        """custom_ids of a batch's items that no result has mentioned yet."""
        rows = self._run(
            "SELECT custom_id FROM batch_items WHERE batch_id = ? "
            f"AND outcome = {ITEM_PENDING_SQL}",
            (batch_id,),
        )
        return [r["custom_id"] for r in rows]

    def batch_item_lines(self, batch_id: int, line_nos: Sequence[int]) -> list[tuple[str, int]]:
        """(custom_id, line_no) of the items on these upload lines."""
        if not line_nos:
            return []
        among, params = member_of("line_no", line_nos, self.ARRAYS)
        rows = self._run(
            f"SELECT custom_id, line_no FROM batch_items WHERE batch_id = ? AND {among}",
            (batch_id, *params),
        )
        return [(r["custom_id"], r["line_no"]) for r in rows]

    def close_ingest(self, batch_id: int, state: str, now: float) -> bool:
        """Totals from the items onto the batch, the final state, and `ingested_at`.

        Claimed (under the batch's lock where writers are concurrent) by a compare-and-set
        on `ingested_at`, so a batch is closed (and gets its `batch_ingested` event) once,
        whoever else ingested it meanwhile. True if closed now.
        """
        self._lock(batch_id)
        claimed = self._run(
            "UPDATE batches SET ingested_at = ? WHERE id = ? AND ingested_at IS NULL",
            (now, batch_id),
        ).rowcount
        if not claimed:
            return False
        sums = self._run(
            "SELECT coalesce(sum(input_tokens), 0) AS input_tokens, "
            "coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cost), 0) AS cost, "
            "count(*) AS n FROM batch_items WHERE batch_id = ?",
            (batch_id,),
        ).fetchone()
        fields, event = ingest_totals(sums, self.batch_outcome_counts(batch_id), state)
        self._batches.update_batch(batch_id, fields, now, event)
        return True

    def count_batch_items(self, batch_id: int) -> int:
        """How many lines (items) a batch has locally."""
        row = self._run("SELECT count(*) AS n FROM batch_items WHERE batch_id = ?", (batch_id,))
        return int(row.fetchone()["n"])

    def resubmittable_counts(
        self, batch_id: int, outcomes: Sequence[str], special: ErrorMatch
    ) -> tuple[int, int]:
        """(lines a resubmit would send, how many of them match `special`), jobs still owned."""
        match, params = self._error_match(special)
        owned, owned_params = self._owned_items(outcomes)
        row = self._run(
            f"SELECT count(*) AS n, count(*) FILTER (WHERE {match}) AS special {owned}",
            (*params, batch_id, *owned_params),
        ).fetchone()
        return int(row["n"]), int(row["special"])

    def remote_job_batches(self, flt: JobFilter) -> dict[int, int]:
        """Batch id → how many of the failed/cancelled jobs matching `flt` that batch ran."""
        where, params = _where(flt, like=self.LIKE)
        rows = self._run(
            "SELECT j.batch_id, count(*) AS n FROM jobs j "
            f"WHERE j.status IN {RETRYABLE_JOB_STATUSES_SQL} "
            f"AND j.batch_id IS NOT NULL AND {where} GROUP BY j.batch_id ORDER BY j.batch_id",
            params,
        )
        return {r["batch_id"]: r["n"] for r in rows}
