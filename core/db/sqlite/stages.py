"""Stage runs and progress of jobs, on SQLite (see `sqlstages`)."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqlshared import same_sql
from batchdash.core.db.sqlstages import SqlStages


class SqliteStages(SqlStages):
    """Stage runs and progress on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql)
