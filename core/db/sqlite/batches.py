"""Remote batches on SQLite: the poll and submit leases on the caller's clock, and the
methods whose SQL is SQLite's own; the rest is shared (`core/db/sqlbatches.py`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from batchdash.core.db.sqlbatches import SqlBatches
from batchdash.core.db.sqlshared import POLL_WORK_SQL, RANK_SQL, RAW_RANK, TERMINAL_RANK, same_sql
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Batch


class SqliteBatches(SqlBatches):
    """Remote batches on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql)

    def qa_batches_to_collect(self, meta_key: str) -> list[Batch]:
        """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet."""
        return self._batches(
            "SELECT * FROM batches b WHERE b.ingested_at IS NOT NULL "
            "AND CASE WHEN json_valid(b.metadata) THEN json_extract(b.metadata, '$.' || ?) END "
            "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id "
            "AND e.kind = 'qa_collected') ORDER BY b.id",
            (meta_key,),
        )

    def record_remote(self, batch_id: int, fields: dict[str, Any], now: float) -> bool:
        """Store a successful poll, unless it would move the batch backwards; True if stored.

        One compare-and-set UPDATE: nothing changes once the batch is ingested or its status
        is terminal, and a status never replaces a further one. Unknown statuses (other
        providers' words) may replace any non-terminal one. A change of raw status gets an
        event; a success clears the poll error and its backoff. (SQLite's one writer at a
        time makes reading the old status first safe; PostgreSQL reads it from the locked row.)
        """
        old = self._conn.execute(
            "SELECT raw_status FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        if old is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        new_raw = fields.get("raw_status", old["raw_status"])
        values = self._polled(fields, now)
        guard = f"ingested_at IS NULL AND {RANK_SQL} < {TERMINAL_RANK}"
        params: list[Any] = [*values.values(), batch_id]
        if new_raw in RAW_RANK:
            guard += f" AND {RANK_SQL} <= ?"
            params.append(RAW_RANK[new_raw])
        assignments = ", ".join(f"{name} = ?" for name in values)
        row = self._conn.execute(
            f"UPDATE batches SET {assignments} WHERE id = ? AND {guard} RETURNING queue", params
        ).fetchone()
        if row is None:
            return False
        if new_raw != old["raw_status"]:
            detail = f"{old['raw_status'] or '-'} → {new_raw}"
            self._event(now, "batch_status", batch_id, row["queue"], detail)
        return True

    def batches_due(self, now: float) -> list[Batch]:
        """Submitted batches to poll now, and finished ones whose results are not in yet."""
        return self._batches(
            f"SELECT * FROM batches WHERE (next_poll_at IS NULL OR next_poll_at <= ?) "
            f"AND {POLL_WORK_SQL} ORDER BY coalesce(next_poll_at, 0), id",
            (now,),
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

        Free when nobody holds it, its lease expired, we hold it, or its holder is
        `dead_owner` (a process the caller saw die). Returns the batch as it is now (never a
        stale read), or None when another poller has it or it needs no more work.
        """
        found = self._batches(
            f"UPDATE batches SET poll_owner = ?, poll_lease_until = ? WHERE id = ? "
            f"AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {POLL_WORK_SQL} "
            f"AND (poll_owner IS NULL OR poll_lease_until < ? OR poll_owner = ? OR poll_owner = ?) "
            f"RETURNING *",
            (owner, until, batch_id, now, now, owner, dead_owner or owner),
        )
        return found[0] if found else None

    def renew_batch_poll(self, batch_id: int, owner: str, until: float) -> bool:
        """Extend our poll lease; False when another poller took the batch over."""
        return bool(
            self._conn.execute(
                "UPDATE batches SET poll_lease_until = ? WHERE id = ? AND poll_owner = ?",
                (until, batch_id, owner),
            ).rowcount
        )

    def get_submit_lease(self, batch_id: int) -> tuple[str, float] | None:
        """(owner, expires_at) of whoever is submitting this batch, if anyone."""
        row = self._conn.execute(
            "SELECT owner, expires_at FROM batch_submit_leases WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def put_submit_lease(self, batch_id: int, owner: str, expires_at: float) -> None:
        """Take or extend the right to submit this batch (the caller checked it may)."""
        self._conn.execute(
            "INSERT INTO batch_submit_leases (batch_id, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (batch_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at",
            (batch_id, owner, expires_at),
        )
