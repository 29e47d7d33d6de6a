"""PostgreSQL repository: PgEvents, the event timeline (shared SQL in `core/db/sqlevents.py`).

`add_events` is the one way the PostgreSQL repositories insert event rows that they do not
write in the same statement as their change (those use a CTE over the changed rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlevents import SqlEvents, insert_events
from batchdash.core.db.sqlshared import pg_sql

if TYPE_CHECKING:
    import psycopg


def add_events(conn: psycopg.Connection[Any], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert (at, kind, job_id, batch_id, queue, worker_id, detail) event rows."""
    insert_events(conn, pg_sql, rows)


class PgEvents(SqlEvents):
    """The event timeline on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql, "ILIKE")
