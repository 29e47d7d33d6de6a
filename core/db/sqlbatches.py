"""The batches repository's shared half, written once for both back ends.

Its SQL is the dialect SQLite and PostgreSQL share, with `?` placeholders that the back
end's `sql` function converts (see `core/db/sqlevents.py`). What stays per back end, in
`sqlite/batches.py` and `postgres/batches.py`: the lease and due-time methods (PostgreSQL
runs them on the server's clock, SQLite on the caller's), `record_remote` (PostgreSQL reads
the old status from the locked row in the same statement), and the QA metadata lookup
(SQLite's json functions; PostgreSQL decodes in Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlevents import insert_events
from batchdash.core.db.sqlqueues import SqlQueues
from batchdash.core.db.sqlshared import (
    ACTIVE_BATCH_STATES_SQL,
    BATCH_SUBMITTING_SQL,
    JOB_FAILED_SQL,
    UNFINISHED_JOBS_SQL,
    SharedSqlRepository,
    _batch,
    batch_values,
    member_of,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Batch, dumps

if TYPE_CHECKING:  # a name only here: `--once` never records a batch
    from batchdash.core.batch_records import NewBatch


def list_batches_sql(
    *,
    active_only: bool,
    active_first: bool,
    states: Sequence[str],
    created_after: float | None,
    created_before: float | None,
    limit: int | None,
    offset: int,
) -> tuple[str, list[Any]]:
    """The batch listing, newest first, in shared SQL (`?` marks; see `same_sql`/`pg_sql`).

    `active_only` uses the partial index on active states; `states` are normalized states.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if active_only:
        clauses.append(f"state IN {ACTIVE_BATCH_STATES_SQL}")
    if states:
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        params.extend(states)
    if created_after is not None:
        clauses.append("created_at >= ?")
        params.append(created_after)
    if created_before is not None:
        clauses.append("created_at < ?")
        params.append(created_before)
    sql = "SELECT * FROM batches"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    order = f"state IN {ACTIVE_BATCH_STATES_SQL} DESC, " if active_first else ""
    sql += f" ORDER BY {order}created_at DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params.extend([limit, offset])
    return sql, params


def insert_batch_sql(mark: str) -> str:
    """The INSERT of a new batch row (placeholders `mark`) returning its id; its values are
    `new_batch_values`."""
    return (
        "INSERT INTO batches (provider, remote_id, submit_key, queue, endpoint, model, "
        "input_path, input_file_id, raw_status, state, total, metadata, parent_id, "
        "shard_index, shard_count, base_url, endpoint_name, created_at, updated_at) "
        f"VALUES ({', '.join([mark] * 19)}) RETURNING id"
    )


def new_batch_values(new: NewBatch, now: float) -> tuple[Any, ...]:
    """The values of `insert_batch_sql` for a new batch recorded at `now`."""
    return (
        new.provider,
        new.remote_id,
        new.submit_key,
        new.queue,
        new.endpoint,
        new.model,
        new.input_path,
        new.input_file_id,
        new.raw_status,
        new.state,
        new.total,
        None if new.metadata is None else dumps(new.metadata),
        new.parent_id,
        new.shard_index,
        new.shard_count,
        new.base_url,
        new.endpoint_name,
        now,
        now,
    )


class SqlBatches(SharedSqlRepository):
    """Remote batches on one connection (sqlite3 or psycopg: both `execute` alike)."""

    def _batches(self, sql: str, params: Sequence[Any] = ()) -> list[Batch]:
        return [_batch(r) for r in self._run(sql, params)]

    def _event(self, now: float, kind: str, batch_id: int, queue: str, detail: Any) -> None:
        insert_events(self._conn, self._sql, [(now, kind, None, batch_id, queue, None, detail)])

    def list_batches(
        self,
        *,
        active_only: bool = False,
        active_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
        states: Sequence[str] = (),
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> list[Batch]:
        """Batches newest first (active ones first when asked); `limit`/`offset` page them.

        `active_only` uses the partial index on active states; `states` (normalized) and
        `created_after` (inclusive) / `created_before` (exclusive) narrow the list.
        """
        sql, params = list_batches_sql(
            active_only=active_only,
            active_first=active_first,
            states=states,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        return self._batches(sql, params)

    def count_batches(self) -> int:
        """How many batches are tracked."""
        return int(self._run("SELECT count(*) AS n FROM batches").fetchone()["n"])

    def get_batch(self, batch_id: int | str) -> Batch:
        """A batch by local id or by the provider's id, or NotFoundError."""
        if isinstance(batch_id, int) or str(batch_id).isdigit():
            found = self._batches("SELECT * FROM batches WHERE id = ?", (int(batch_id),))
        else:
            found = self._batches("SELECT * FROM batches WHERE remote_id = ?", (batch_id,))
        if not found:
            raise NotFoundError(f"unknown batch {batch_id}")
        return found[0]

    def inflight_batch_keys(self, queue: str) -> list[str]:
        """Keys of a queue's remote-batch jobs still waiting for their results."""
        rows = self._run(
            f"SELECT key FROM jobs WHERE queue = ? AND status IN {UNFINISHED_JOBS_SQL} "
            "AND batch_id IS NOT NULL",
            (queue,),
        )
        return [r["key"] for r in rows]

    def mark_qa_collected(self, batch: Batch, detail: str, now: float) -> None:
        """Record that a QA batch's verdicts are stored (it is not collected again)."""
        self._event(now, "qa_collected", batch.id, batch.queue, detail)

    def add_batch(self, new: NewBatch, now: float) -> int:
        """Insert a batch row with its first timeline event; returns the local id."""
        SqlQueues(self._conn, self._sql).ensure_queue(new.queue, now)
        row = self._run(insert_batch_sql("?"), new_batch_values(new, now)).fetchone()
        kind = "batch_imported" if new.remote_id else "batch_intent"
        self._event(now, kind, row["id"], new.queue, new.remote_id)
        return int(row["id"])

    def update_batch(
        self,
        batch_id: int,
        fields: dict[str, Any],
        now: float,
        event: tuple[str, str | None] | None = None,
    ) -> None:
        """Set some columns of a batch (names checked), optionally with a timeline event."""
        values = batch_values(fields, "update_batch")
        values["updated_at"] = now
        assignments = ", ".join(f"{name} = ?" for name in values)
        row = self._run(
            f"UPDATE batches SET {assignments} WHERE id = ? RETURNING queue",
            (*values.values(), batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        if event is not None:
            self._event(now, event[0], batch_id, row["queue"], event[1])

    @staticmethod
    def _polled(fields: dict[str, Any], now: float) -> dict[str, Any]:
        """The columns a successful poll sets: its fields, and the poll error cleared."""
        values = batch_values(fields, "record_remote")
        values.update(
            polled_at=now,
            poll_error=None,
            poll_failures=0,
            next_poll_at=None,
            unreachable_since=None,
            updated_at=now,
        )
        return values

    def note_poll_failure(self, batch_id: int, error: str, now: float) -> int:
        """Record a failed provider call on the batch; returns its consecutive failure count."""
        row = self._run(
            "UPDATE batches SET poll_error = ?, polled_at = ?, poll_failures = poll_failures + 1, "
            "updated_at = ? WHERE id = ? RETURNING poll_failures",
            (error, now, now, batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        return int(row["poll_failures"])

    def mark_unreachable(self, batch_id: int, now: float) -> bool:
        """Note since when a batch cannot be reached (kept while it stays so); True if new."""
        row = self._run(
            "UPDATE batches SET unreachable_since = ? WHERE id = ? AND unreachable_since IS NULL "
            "RETURNING queue, poll_error",
            (now, batch_id),
        ).fetchone()
        if row is not None:
            self._event(now, "batch_unreachable", batch_id, row["queue"], row["poll_error"])
        return row is not None

    def settled_batches(self, batch_ids: Sequence[int]) -> set[int]:
        """Those of these batches that were resubmitted and own no failed job any more."""
        if not batch_ids:
            return set()
        among, params = member_of("b.id", batch_ids, self.ARRAYS)
        rows = self._run(
            f"SELECT b.id FROM batches b WHERE {among} "
            "AND EXISTS (SELECT 1 FROM batches c WHERE c.parent_id = b.id) "
            "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id "
            f"AND j.status = {JOB_FAILED_SQL})",
            params,
        )
        return {r["id"] for r in rows}

    def batch_children(self, batch_id: int) -> list[int]:
        """Local ids of the batches resubmitted from this one."""
        rows = self._run("SELECT id FROM batches WHERE parent_id = ? ORDER BY id", (batch_id,))
        return [r["id"] for r in rows]

    def release_batch_poll(self, batch_id: int, owner: str) -> None:
        """Give the poll lease back, if this owner still holds it."""
        self._run(
            "UPDATE batches SET poll_owner = NULL, poll_lease_until = NULL "
            "WHERE id = ? AND poll_owner = ?",
            (batch_id, owner),
        )

    def submitting_batches(self) -> list[Batch]:
        """Batches whose submission has not been confirmed by the provider yet."""
        return self._batches(
            f"SELECT * FROM batches WHERE state = {BATCH_SUBMITTING_SQL} ORDER BY id"
        )

    def known_remote_ids(self) -> set[str]:
        """Every provider batch id already tracked locally."""
        rows = self._run("SELECT remote_id FROM batches WHERE remote_id IS NOT NULL")
        return {r["remote_id"] for r in rows}

    def drop_submit_lease(self, batch_id: int, owner: str) -> None:
        """Release the submit lease if this owner still holds it."""
        self._run(
            "DELETE FROM batch_submit_leases WHERE batch_id = ? AND owner = ?", (batch_id, owner)
        )
