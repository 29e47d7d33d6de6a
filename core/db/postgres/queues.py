"""PostgreSQL repository: PgQueues (shared SQL in `core/db/sqlqueues.py`).

Queue names sort byte-wise (their column is COLLATE "C"), as SQLite sorts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlqueues import SqlQueues
from batchdash.core.db.sqlshared import pg_sql

if TYPE_CHECKING:
    import psycopg


class PgQueues(SqlQueues):
    """The queues repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql)
