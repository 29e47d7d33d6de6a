"""PostgreSQL repository: PgNotices (shared SQL in `core/db/sqlnotices.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlnotices import SqlNotices
from batchdash.core.db.sqlshared import pg_sql

if TYPE_CHECKING:
    import psycopg


class PgNotices(SqlNotices):
    """What each notification channel sent, on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql)
