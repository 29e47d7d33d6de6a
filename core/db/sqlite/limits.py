"""Rate limits on SQLite (shared SQL in `core/db/sqllimits.py`): the write transaction is
exclusive already, so booking needs no row lock."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqllimits import SqlLimits
from batchdash.core.db.sqlshared import same_sql


class SqliteLimits(SqlLimits):
    """Rate limits on one SQLite connection, timed by the callers' clock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn, same_sql, "", lambda now: now, "?")
