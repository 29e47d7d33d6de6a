"""The event timeline of jobs, queues, workers and batches."""

from __future__ import annotations

import sqlite3
from typing import Any

from batchdash.core.db.sqlshared import (
    _event,
)
from batchdash.core.models import (
    Event,
)


class SqliteEvents:
    """The event timeline on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def list_events(
        self, job_id: int | None, after_id: int = 0, limit: int | None = None
    ) -> list[Event]:
        """Events in order, for one job or all, after an event id (for incremental export)."""
        sql = "SELECT * FROM events WHERE id > ?"
        params: list[Any] = [after_id]
        if job_id is not None:
            sql += " AND job_id = ?"
            params.append(job_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_event(r) for r in self._conn.execute(sql, params)]

    def batch_events(self, batch_id: int, limit: int = 200) -> list[Event]:
        """The latest events of one batch (oldest first), through the events_batch index."""
        rows = self._conn.execute(
            "SELECT * FROM (SELECT * FROM events WHERE batch_id = ? AND job_id IS NULL "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            (batch_id, limit),
        )
        return [_event(r) for r in rows]
