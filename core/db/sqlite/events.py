"""The event timeline of jobs, queues, workers and batches, on SQLite (see `sqlevents`)."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqlevents import SqlEvents
from batchdash.core.db.sqlshared import same_sql


class SqliteEvents(SqlEvents):
    """The event timeline on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql, "LIKE")
