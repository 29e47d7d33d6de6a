"""PostgreSQL repository: PgBatches, remote batches with their poll and submit leases.

Same behaviour as `core/db/sqlite/batches.py`, with one difference: leases run on the
server's clock (`batchdash_now()`), because the pollers and submitters may live on hosts
whose clocks differ. A lease expiry the caller computed from its own clock is stored as
`batchdash_now() + (until - now)`, i.e. the same distance from the server's "now"; where
the caller gave no `now`, this host's clock reading at the call stands in for it (and a
stored expiry is handed back on the caller's clock the same way). `batches_due(now)`
converts `now` alike, so `batches_due(float("inf"))` still means "all work, due or not".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.batch_records import NewBatch
from batchdash.core.db.postgres.events import add_events
from batchdash.core.db.postgres.queues import PgQueues
from batchdash.core.db.sqlshared import (
    BATCH_SUBMITTING_SQL,
    JOB_FAILED_SQL,
    POLL_WORK_SQL,
    RANK_SQL,
    RAW_RANK,
    TERMINAL_RANK,
    UNFINISHED_JOBS_SQL,
    _batch,
    batch_values,
    insert_batch_sql,
    list_batches_sql,
    new_batch_values,
    pg_sql,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Batch, dumps

if TYPE_CHECKING:
    import psycopg

#: A time on the caller's clock (first parameter) moved to the server's, measured from the
#: caller's "now" (second parameter).
_ON_SERVER_CLOCK = "(batchdash_now() + (%s::float8 - %s::float8))"


def batch_event(
    conn: psycopg.Connection[Any],
    now: float,
    kind: str,
    batch_id: int,
    queue: str,
    detail: str | None,
) -> None:
    """Add one event to a batch's timeline."""
    add_events(conn, [(now, kind, None, batch_id, queue, None, detail)])


def one_row(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> Any:
    """The single row of a query that always has one (an aggregate, an INSERT … RETURNING)."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row


def lock_batch(conn: psycopg.Connection[Any], batch_id: int) -> None:
    """Lock a batch row until the transaction ends: whoever ingests into a batch (on any
    host) holds it, so two pollers never write the same results twice."""
    conn.execute("SELECT id FROM batches WHERE id = %s FOR UPDATE", (batch_id,))


class PgBatches:
    """The batches repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _batches(self, sql: str, params: Sequence[Any] = ()) -> list[Batch]:
        return [_batch(r) for r in self._conn.execute(sql, params)]

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
        """Batches newest first (active ones first when asked); `limit`/`offset` page them."""
        sql, params = list_batches_sql(
            active_only=active_only,
            active_first=active_first,
            states=states,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        return self._batches(pg_sql(sql), params)

    def count_batches(self) -> int:
        """How many batches are tracked."""
        return int(one_row(self._conn, "SELECT count(*) AS n FROM batches")["n"])

    def get_batch(self, batch_id: int | str) -> Batch:
        """A batch by local id or by the provider's id, or NotFoundError."""
        if isinstance(batch_id, int) or str(batch_id).isdigit():
            found = self._batches("SELECT * FROM batches WHERE id = %s", (int(batch_id),))
        else:
            found = self._batches("SELECT * FROM batches WHERE remote_id = %s", (batch_id,))
        if not found:
            raise NotFoundError(f"unknown batch {batch_id}")
        return found[0]

    def inflight_batch_keys(self, queue: str) -> list[str]:
        """Keys of a queue's remote-batch jobs still waiting for their results."""
        rows = self._conn.execute(
            f"SELECT key FROM jobs WHERE queue = %s AND status IN {UNFINISHED_JOBS_SQL} "
            "AND batch_id IS NOT NULL",
            (queue,),
        )
        return [r["key"] for r in rows]

    def qa_batches_to_collect(self, meta_key: str) -> list[Batch]:
        """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet.

        The metadata is JSON text that need not be an object: the key is looked up after
        decoding (a text search narrows the rows first), so no cast can fail in SQL.
        """
        candidates = self._batches(
            "SELECT * FROM batches b WHERE b.ingested_at IS NOT NULL "
            "AND strpos(b.metadata, %s) > 0 AND NOT EXISTS (SELECT 1 FROM events e "
            "WHERE e.batch_id = b.id AND e.kind = 'qa_collected') ORDER BY b.id",
            (dumps(meta_key),),
        )
        return [
            b
            for b in candidates
            if isinstance(b.metadata, dict) and b.metadata.get(meta_key) is not None
        ]

    def mark_qa_collected(self, batch: Batch, detail: str, now: float) -> None:
        """Record that a QA batch's verdicts are stored (it is not collected again)."""
        batch_event(self._conn, now, "qa_collected", batch.id, batch.queue, detail)

    def add_batch(self, new: NewBatch, now: float) -> int:
        """Insert a batch row with its first timeline event; returns the local id."""
        PgQueues(self._conn).ensure_queue(new.queue, now)
        row = one_row(self._conn, insert_batch_sql("%s"), new_batch_values(new, now))
        kind = "batch_imported" if new.remote_id else "batch_intent"
        batch_event(self._conn, now, kind, row["id"], new.queue, new.remote_id)
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
        assignments = ", ".join(f"{name} = %s" for name in values)
        row = self._conn.execute(
            f"UPDATE batches SET {assignments} WHERE id = %s RETURNING queue",
            (*values.values(), batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        if event is not None:
            batch_event(self._conn, now, event[0], batch_id, row["queue"], event[1])

    def record_remote(self, batch_id: int, fields: dict[str, Any], now: float) -> bool:
        """Store a successful poll, unless it would move the batch backwards; True if stored.

        One compare-and-set UPDATE (see the SQLite store); the old status comes from the
        locked row itself, so two pollers cannot both record the same change.
        """
        values = batch_values(fields, "record_remote")
        values.update(
            polled_at=now,
            poll_error=None,
            poll_failures=0,
            next_poll_at=None,
            unreachable_since=None,
            updated_at=now,
        )
        guard = f"b.ingested_at IS NULL AND {RANK_SQL} < {TERMINAL_RANK}"
        params: list[Any] = [*values.values(), batch_id]
        new_raw = fields.get("raw_status")
        if new_raw in RAW_RANK:
            guard += f" AND {RANK_SQL} <= %s"
            params.append(RAW_RANK[new_raw])
        assignments = ", ".join(f"{name} = %s" for name in values)
        row = self._conn.execute(
            f"UPDATE batches b SET {assignments} FROM (SELECT id, raw_status AS old_raw "
            "FROM batches WHERE id = %s FOR UPDATE) old "
            f"WHERE b.id = old.id AND {guard} RETURNING b.queue, b.raw_status, old.old_raw",
            params,
        ).fetchone()
        if row is None:
            self.get_batch(batch_id)  # NotFoundError for an unknown batch
            return False
        if row["raw_status"] != row["old_raw"]:
            detail = f"{row['old_raw'] or '-'} → {row['raw_status']}"
            batch_event(self._conn, now, "batch_status", batch_id, row["queue"], detail)
        return True

    def note_poll_failure(self, batch_id: int, error: str, now: float) -> int:
        """Record a failed provider call on the batch; returns its consecutive failure count."""
        row = self._conn.execute(
            "UPDATE batches SET poll_error = %s, polled_at = %s, "
            "poll_failures = poll_failures + 1, updated_at = %s WHERE id = %s "
            "RETURNING poll_failures",
            (error, now, now, batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        return int(row["poll_failures"])

    def mark_unreachable(self, batch_id: int, now: float) -> bool:
        """Note since when a batch cannot be reached (kept while it stays so); True if new."""
        row = self._conn.execute(
            "UPDATE batches SET unreachable_since = %s WHERE id = %s "
            "AND unreachable_since IS NULL RETURNING queue, poll_error",
            (now, batch_id),
        ).fetchone()
        if row is not None:
            batch_event(
                self._conn, now, "batch_unreachable", batch_id, row["queue"], row["poll_error"]
            )
        return row is not None

    def settled_batches(self, batch_ids: Sequence[int]) -> set[int]:
        """Those of these batches that were resubmitted and own no failed job any more."""
        if not batch_ids:
            return set()
        rows = self._conn.execute(
            "SELECT b.id FROM batches b WHERE b.id = ANY(%s) "
            "AND EXISTS (SELECT 1 FROM batches c WHERE c.parent_id = b.id) "
            "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id "
            f"AND j.status = {JOB_FAILED_SQL})",
            (list(batch_ids),),
        )
        return {r["id"] for r in rows}

    def batch_children(self, batch_id: int) -> list[int]:
        """Local ids of the batches resubmitted from this one."""
        rows = self._conn.execute(
            "SELECT id FROM batches WHERE parent_id = %s ORDER BY id", (batch_id,)
        )
        return [r["id"] for r in rows]

    def batches_due(self, now: float) -> list[Batch]:
        """Submitted batches to poll now, and finished ones whose results are not in yet."""
        return self._batches(
            f"SELECT * FROM batches WHERE (next_poll_at IS NULL OR "
            f"next_poll_at <= {_ON_SERVER_CLOCK}) AND {POLL_WORK_SQL} "
            "ORDER BY coalesce(next_poll_at, 0), id",
            (now, time.time()),
        )

    def claim_batch_poll(
        self,
        batch_id: int,
        owner: str,
        until: float,
        now: float,
        dead_owner: str | None = None,
    ) -> Batch | None:
        """Take the poll lease of a batch still due, in one compare-and-set UPDATE.

        Free when nobody holds it, its lease expired (on the server's clock), we hold it,
        or its holder is `dead_owner`. Returns the batch as it is now, or None when another
        poller has it or it needs no more work.
        """
        found = self._batches(
            f"UPDATE batches SET poll_owner = %s, poll_lease_until = {_ON_SERVER_CLOCK} "
            "WHERE id = %s AND (next_poll_at IS NULL OR next_poll_at <= batchdash_now()) "
            f"AND {POLL_WORK_SQL} AND (poll_owner IS NULL OR poll_lease_until < batchdash_now() "
            "OR poll_owner = %s OR poll_owner = %s) RETURNING *",
            (owner, until, now, batch_id, owner, dead_owner or owner),
        )
        return found[0] if found else None

    def renew_batch_poll(self, batch_id: int, owner: str, until: float) -> bool:
        """Extend our poll lease; False when another poller took the batch over."""
        cur = self._conn.execute(
            f"UPDATE batches SET poll_lease_until = {_ON_SERVER_CLOCK} "
            "WHERE id = %s AND poll_owner = %s",
            (until, time.time(), batch_id, owner),
        )
        return cur.rowcount > 0

    def release_batch_poll(self, batch_id: int, owner: str) -> None:
        """Give the poll lease back, if this owner still holds it."""
        self._conn.execute(
            "UPDATE batches SET poll_owner = NULL, poll_lease_until = NULL "
            "WHERE id = %s AND poll_owner = %s",
            (batch_id, owner),
        )

    def submitting_batches(self) -> list[Batch]:
        """Batches whose submission has not been confirmed by the provider yet."""
        return self._batches(
            f"SELECT * FROM batches WHERE state = {BATCH_SUBMITTING_SQL} ORDER BY id"
        )

    def known_remote_ids(self) -> set[str]:
        """Every provider batch id already tracked locally."""
        rows = self._conn.execute("SELECT remote_id FROM batches WHERE remote_id IS NOT NULL")
        return {r["remote_id"] for r in rows}

    def get_submit_lease(self, batch_id: int) -> tuple[str, float] | None:
        """(owner, expires_at) of whoever is submitting this batch, if anyone.

        The expiry is handed back on this host's clock (its distance from the server's now).
        """
        row = self._conn.execute(
            "SELECT owner, expires_at - batchdash_now() AS left FROM batch_submit_leases "
            "WHERE batch_id = %s",
            (batch_id,),
        ).fetchone()
        return None if row is None else (row["owner"], time.time() + row["left"])

    def put_submit_lease(self, batch_id: int, owner: str, expires_at: float) -> None:
        """Take or extend the right to submit this batch (the caller checked it may)."""
        self._conn.execute(
            "INSERT INTO batch_submit_leases (batch_id, owner, expires_at) "
            f"VALUES (%s, %s, {_ON_SERVER_CLOCK}) ON CONFLICT (batch_id) DO UPDATE SET "
            "owner = excluded.owner, expires_at = excluded.expires_at",
            (batch_id, owner, expires_at, time.time()),
        )

    def drop_submit_lease(self, batch_id: int, owner: str) -> None:
        """Release the submit lease if this owner still holds it."""
        self._conn.execute(
            "DELETE FROM batch_submit_leases WHERE batch_id = %s AND owner = %s",
            (batch_id, owner),
        )
