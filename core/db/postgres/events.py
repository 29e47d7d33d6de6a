"""PostgreSQL repository: PgEvents, the event timeline (see the Events Protocol in ports.py).

`add_events` is the one way the PostgreSQL repositories insert event rows that they do not
write in the same statement as their change (those use a CTE over the changed rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlshared import _event
from batchdash.core.models import Event

if TYPE_CHECKING:
    import psycopg


def add_events(conn: psycopg.Connection[Any], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert (at, kind, job_id, batch_id, queue, worker_id, detail) event rows."""
    conn.cursor().executemany(
        "INSERT INTO events (at, kind, job_id, batch_id, queue, worker_id, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


class PgEvents:
    """The event timeline on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def list_events(
        self, job_id: int | None, after_id: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events in order, for one job or all, after an event id (for incremental export)."""
        sql = "SELECT * FROM events WHERE id > %s"
        params: list[Any] = [after_id]
        if job_id is not None:
            sql += " AND job_id = %s"
            params.append(job_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        return [_event(r) for r in self._conn.execute(sql, params)]

    def batch_events(self, batch_id: int, limit: int = 200) -> list[Event]:
        """The latest events of one batch (oldest first), through the events_batch index."""
        rows = self._conn.execute(
            "SELECT * FROM (SELECT * FROM events WHERE batch_id = %s AND job_id IS NULL "
            "ORDER BY id DESC LIMIT %s) AS latest ORDER BY id",
            (batch_id, limit),
        )
        return [_event(r) for r in rows]
