"""Rate limits on PostgreSQL (shared SQL in `core/db/sqllimits.py`): booking locks the
queue's rows (`FOR UPDATE`), so workers on every host book one after another, and every
time is the server's clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.postgres.stats import PgStats
from batchdash.core.db.sqllimits import SqlLimits
from batchdash.core.db.sqlshared import pg_sql

if TYPE_CHECKING:
    import psycopg


class PgLimits(SqlLimits):
    """Rate limits on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any], stats: PgStats) -> None:
        # The server's clock; the caller's `now` only fills the placeholder both share.
        super().__init__(conn, pg_sql, " FOR UPDATE", stats.clock, "coalesce(batchdash_now(), ?)")
