"""PostgreSQL repository: PgStats (see the matching Protocol in core/db/ports.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


class PgStats:
    """The stats repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
