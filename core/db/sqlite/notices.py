"""Notification delivery memory on SQLite (shared SQL in `core/db/sqlnotices.py`)."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqlnotices import SqlNotices
from batchdash.core.db.sqlshared import same_sql


class SqliteNotices(SqlNotices):
    """What each notification channel sent, on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql)
