"""Remote batches: rows, states, poll and submit leases."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from batchdash.core.batch_records import NewBatch
from batchdash.core.db.sqlite.queues import SqliteQueues
from batchdash.core.db.sqlite.rows import (
    _event_rows,
)
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
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import Batch


class SqliteBatches:
    """Remote batches on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

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
        return [_batch(r) for r in self._conn.execute(sql, params)]

    def count_batches(self) -> int:
        """How many batches are tracked."""
        return int(self._conn.execute("SELECT count(*) FROM batches").fetchone()[0])

    def get_batch(self, batch_id: int | str) -> Batch:
        """A batch by local id or by the provider's id, or NotFoundError."""
        if isinstance(batch_id, int) or str(batch_id).isdigit():
            row = self._conn.execute(
                "SELECT * FROM batches WHERE id = ?", (int(batch_id),)
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT * FROM batches WHERE remote_id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        return _batch(row)

    def inflight_batch_keys(self, queue: str) -> list[str]:
        """Keys of a queue's remote-batch jobs still waiting for their results."""
        rows = self._conn.execute(
            f"SELECT key FROM jobs WHERE queue = ? AND status IN {UNFINISHED_JOBS_SQL} "
            "AND batch_id IS NOT NULL",
            (queue,),
        )
        return [r[0] for r in rows]

    def qa_batches_to_collect(self, meta_key: str) -> list[Batch]:
        """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet."""
        rows = self._conn.execute(
            "SELECT * FROM batches b WHERE b.ingested_at IS NOT NULL "
            "AND CASE WHEN json_valid(b.metadata) THEN json_extract(b.metadata, '$.' || ?) END "
            "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id "
            "AND e.kind = 'qa_collected') ORDER BY b.id",
            (meta_key,),
        )
        return [_batch(r) for r in rows]

    def mark_qa_collected(self, batch: Batch, detail: str, now: float) -> None:
        """Record that a QA batch's verdicts are stored (it is not collected again)."""
        _event_rows(self._conn, [(now, "qa_collected", None, batch.id, batch.queue, None, detail)])

    def add_batch(self, new: NewBatch, now: float) -> int:
        """Insert a batch row with its first timeline event; returns the local id."""
        row = self._conn.execute(insert_batch_sql("?"), new_batch_values(new, now)).fetchone()
        SqliteQueues(self._conn).ensure_queue(new.queue, now)
        kind = "batch_imported" if new.remote_id else "batch_intent"
        _event_rows(self._conn, [(now, kind, None, row["id"], new.queue, None, new.remote_id)])
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
        row = self._conn.execute(
            f"UPDATE batches SET {assignments} WHERE id = ? RETURNING queue",
            (*values.values(), batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        if event is not None:
            _event_rows(self._conn, [(now, event[0], None, batch_id, row["queue"], None, event[1])])

    def record_remote(self, batch_id: int, fields: dict[str, Any], now: float) -> bool:
        """Store a successful poll, unless it would move the batch backwards; True if stored.

        One compare-and-set UPDATE: nothing changes once the batch is ingested or its status
        is terminal, and a status never replaces a further one. Unknown statuses (other
        providers' words) may replace any non-terminal one. A change of raw status gets an
        event; a success clears the poll error and its backoff.
        """
        old = self._conn.execute(
            "SELECT raw_status FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        if old is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        new_raw = fields.get("raw_status", old["raw_status"])
        values = batch_values(fields, "record_remote")
        values.update(
            polled_at=now,
            poll_error=None,
            poll_failures=0,
            next_poll_at=None,
            unreachable_since=None,
            updated_at=now,
        )
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
            _event_rows(
                self._conn, [(now, "batch_status", None, batch_id, row["queue"], None, detail)]
            )
        return True

    def note_poll_failure(self, batch_id: int, error: str, now: float) -> int:
        """Record a failed provider call on the batch; returns its consecutive failure count."""
        row = self._conn.execute(
            "UPDATE batches SET poll_error = ?, polled_at = ?, poll_failures = poll_failures + 1, "
            "updated_at = ? WHERE id = ? RETURNING poll_failures",
            (error, now, now, batch_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown batch {batch_id}")
        return int(row[0])

    def mark_unreachable(self, batch_id: int, now: float) -> bool:
        """Note since when a batch cannot be reached (kept while it stays so); True if new."""
        row = self._conn.execute(
            "UPDATE batches SET unreachable_since = ? WHERE id = ? AND unreachable_since IS NULL "
            "RETURNING queue, poll_error",
            (now, batch_id),
        ).fetchone()
        if row is not None:
            _event_rows(
                self._conn,
                [(now, "batch_unreachable", None, batch_id, row["queue"], None, row["poll_error"])],
            )
        return row is not None

    def settled_batches(self, batch_ids: Sequence[int]) -> set[int]:
        """Those of these batches that were resubmitted and own no failed job any more."""
        if not batch_ids:
            return set()
        rows = self._conn.execute(
            f"SELECT b.id FROM batches b WHERE b.id IN ({','.join('?' * len(batch_ids))}) "
            "AND EXISTS (SELECT 1 FROM batches c WHERE c.parent_id = b.id) "
            "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id "
            f"AND j.status = {JOB_FAILED_SQL})",
            list(batch_ids),
        )
        return {r[0] for r in rows}

    def batch_children(self, batch_id: int) -> list[int]:
        """Local ids of the batches resubmitted from this one."""
        rows = self._conn.execute(
            "SELECT id FROM batches WHERE parent_id = ? ORDER BY id", (batch_id,)
        )
        return [r[0] for r in rows]

    def batches_due(self, now: float) -> list[Batch]:
        """Submitted batches to poll now, and finished ones whose results are not in yet."""
        rows = self._conn.execute(
            f"SELECT * FROM batches WHERE (next_poll_at IS NULL OR next_poll_at <= ?) "
            f"AND {POLL_WORK_SQL} ORDER BY coalesce(next_poll_at, 0), id",
            (now,),
        )
        return [_batch(r) for r in rows]

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
        row = self._conn.execute(
            f"UPDATE batches SET poll_owner = ?, poll_lease_until = ? WHERE id = ? "
            f"AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {POLL_WORK_SQL} "
            f"AND (poll_owner IS NULL OR poll_lease_until < ? OR poll_owner = ? OR poll_owner = ?) "
            f"RETURNING *",
            (owner, until, batch_id, now, now, owner, dead_owner or owner),
        ).fetchone()
        return None if row is None else _batch(row)

    def renew_batch_poll(self, batch_id: int, owner: str, until: float) -> bool:
        """Extend our poll lease; False when another poller took the batch over."""
        return bool(
            self._conn.execute(
                "UPDATE batches SET poll_lease_until = ? WHERE id = ? AND poll_owner = ?",
                (until, batch_id, owner),
            ).rowcount
        )

    def release_batch_poll(self, batch_id: int, owner: str) -> None:
        """Give the poll lease back, if this owner still holds it."""
        self._conn.execute(
            "UPDATE batches SET poll_owner = NULL, poll_lease_until = NULL "
            "WHERE id = ? AND poll_owner = ?",
            (batch_id, owner),
        )

    def submitting_batches(self) -> list[Batch]:
        """Batches whose submission has not been confirmed by the provider yet."""
        rows = self._conn.execute(
            f"SELECT * FROM batches WHERE state = {BATCH_SUBMITTING_SQL} ORDER BY id"
        )
        return [_batch(r) for r in rows]

    def known_remote_ids(self) -> set[str]:
        """Every provider batch id already tracked locally."""
        rows = self._conn.execute("SELECT remote_id FROM batches WHERE remote_id IS NOT NULL")
        return {r[0] for r in rows}

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

    def drop_submit_lease(self, batch_id: int, owner: str) -> None:
        """Release the submit lease if this owner still holds it."""
        self._conn.execute(
            "DELETE FROM batch_submit_leases WHERE batch_id = ? AND owner = ?", (batch_id, owner)
        )
