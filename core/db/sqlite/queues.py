"""Queues on SQLite: creation, pause, listing, QA rubric (shared SQL in `core/db/sqlqueues.py`)."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqlqueues import SqlQueues
from batchdash.core.db.sqlshared import same_sql


class SqliteQueues(SqlQueues):
    """Queues on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql)
