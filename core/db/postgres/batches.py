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
from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlbatches import SqlBatches
from batchdash.core.db.sqlshared import POLL_WORK_SQL, RANK_SQL, RAW_RANK, TERMINAL_RANK, pg_sql
from batchdash.core.models import Batch, dumps

if TYPE_CHECKING:
    import psycopg

#: A time on the caller's clock (first parameter) moved to the server's, measured from the
#: caller's "now" (second parameter); shared-SQL placeholders, as the class writes its SQL.
_ON_SERVER_CLOCK = "(batchdash_now() + (?::float8 - ?::float8))"


def lock_batch(conn: psycopg.Connection[Any], batch_id: int) -> None:
    """Lock a batch row until the transaction ends: whoever ingests into a batch (on any
    host) holds it, so two pollers never write the same results twice."""
    conn.execute("SELECT id FROM batches WHERE id = %s FOR UPDATE", (batch_id,))


class PgBatches(SqlBatches):
    """The batches repository on one psycopg connection."""

    ARRAYS = True

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql)

    def qa_batches_to_collect(self, meta_key: str) -> list[Batch]:
        """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet.

        The metadata is JSON text that need not be an object: the key is looked up after
        decoding (a text search narrows the rows first), so no cast can fail in SQL.
        """
        candidates = self._batches(
            "SELECT * FROM batches b WHERE b.ingested_at IS NOT NULL "
            "AND strpos(b.metadata, ?) > 0 AND NOT EXISTS (SELECT 1 FROM events e "
            "WHERE e.batch_id = b.id AND e.kind = 'qa_collected') ORDER BY b.id",
            (dumps(meta_key),),
        )
        return [
            b
            for b in candidates
            if isinstance(b.metadata, dict) and b.metadata.get(meta_key) is not None
        ]

    def record_remote(self, batch_id: int, fields: dict[str, Any], now: float) -> bool:
        """Store a successful poll, unless it would move the batch backwards; True if stored.

        One compare-and-set UPDATE (see the SQLite store); the old status comes from the
        locked row itself, so two pollers cannot both record the same change.
        """
        values = self._polled(fields, now)
        guard = f"b.ingested_at IS NULL AND {RANK_SQL} < {TERMINAL_RANK}"
        params: list[Any] = [*values.values(), batch_id]
        new_raw = fields.get("raw_status")
        if new_raw in RAW_RANK:
            guard += f" AND {RANK_SQL} <= ?"
            params.append(RAW_RANK[new_raw])
        assignments = ", ".join(f"{name} = ?" for name in values)
        row = self._run(
            f"UPDATE batches b SET {assignments} FROM (SELECT id, raw_status AS old_raw "
            "FROM batches WHERE id = ? FOR UPDATE) old "
            f"WHERE b.id = old.id AND {guard} RETURNING b.queue, b.raw_status, old.old_raw",
            params,
        ).fetchone()
        if row is None:
            self.get_batch(batch_id)  # NotFoundError for an unknown batch
            return False
        if row["raw_status"] != row["old_raw"]:
            detail = f"{row['old_raw'] or '-'} → {row['raw_status']}"
            self._event(now, "batch_status", batch_id, row["queue"], detail)
        return True

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
            f"UPDATE batches SET poll_owner = ?, poll_lease_until = {_ON_SERVER_CLOCK} "
            "WHERE id = ? AND (next_poll_at IS NULL OR next_poll_at <= batchdash_now()) "
            f"AND {POLL_WORK_SQL} AND (poll_owner IS NULL OR poll_lease_until < batchdash_now() "
            "OR poll_owner = ? OR poll_owner = ?) RETURNING *",
            (owner, until, now, batch_id, owner, dead_owner or owner),
        )
        return found[0] if found else None

    def renew_batch_poll(self, batch_id: int, owner: str, until: float) -> bool:
        """Extend our poll lease; False when another poller took the batch over."""
        cur = self._run(
            f"UPDATE batches SET poll_lease_until = {_ON_SERVER_CLOCK} "
            "WHERE id = ? AND poll_owner = ?",
            (until, time.time(), batch_id, owner),
        )
        return bool(cur.rowcount > 0)

    def get_submit_lease(self, batch_id: int) -> tuple[str, float] | None:
        """(owner, expires_at) of whoever is submitting this batch, if anyone.

        The expiry is handed back on this host's clock (its distance from the server's now).
        """
        row = self._run(
            "SELECT owner, expires_at - batchdash_now() AS left FROM batch_submit_leases "
            "WHERE batch_id = ?",
            (batch_id,),
        ).fetchone()
        return None if row is None else (row["owner"], time.time() + row["left"])

    def put_submit_lease(self, batch_id: int, owner: str, expires_at: float) -> None:
        """Take or extend the right to submit this batch (the caller checked it may)."""
        self._run(
            "INSERT INTO batch_submit_leases (batch_id, owner, expires_at) "
            f"VALUES (?, ?, {_ON_SERVER_CLOCK}) ON CONFLICT (batch_id) DO UPDATE SET "
            "owner = excluded.owner, expires_at = excluded.expires_at",
            (batch_id, owner, expires_at, time.time()),
        )
