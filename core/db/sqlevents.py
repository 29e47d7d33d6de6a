"""The event timeline repository, written once for both back ends.

Its SQL is the dialect SQLite and PostgreSQL share, written with `?` placeholders; each back
end hands in its connection and the function that turns that text into its own placeholders
(`sqlshared.same_sql` for SQLite, `sqlshared.pg_sql` for psycopg).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from batchdash.core.actor import Actor, event_detail
from batchdash.core.db.sqlshared import SharedSqlRepository, _event, _where
from batchdash.core.models import Event, JobFilter

#: An event row: (at, kind, job_id, batch_id, queue, worker_id, detail).
EVENT_INSERT = (
    "INSERT INTO events (at, kind, job_id, batch_id, queue, worker_id, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def insert_events(conn: Any, sql: Callable[[str], str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert event rows on either back end's connection (`sql` converts placeholders)."""
    conn.cursor().executemany(sql(EVENT_INSERT), rows)


def stop_events(
    worker_ids: Iterable[str], now: float, actor: Actor | None
) -> list[tuple[Any, ...]]:
    """The event rows of asking these workers to stop, each naming who asked."""
    detail = event_detail(actor)
    return [(now, "stop_requested", None, None, None, w, detail) for w in worker_ids]


class SqlEvents(SharedSqlRepository):
    """The event timeline on one connection (sqlite3 or psycopg: both `execute` alike)."""

    def __init__(self, conn: Any, sql: Callable[[str], str], like: str) -> None:
        super().__init__(conn, sql)
        self._like = like

    def _rows(self, sql: str, params: list[Any]) -> list[Event]:
        return [_event(r) for r in self._conn.execute(self._sql(sql), params)]

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
        return self._rows(sql, params)

    def job_events(self, flt: JobFilter, after_id: int, limit: int) -> list[Event]:
        """A page of the events of the jobs matching `flt`, in order, after an event id."""
        where, params = _where(flt, like=self._like)
        return self._rows(
            "SELECT e.* FROM events e JOIN jobs j ON j.id = e.job_id "
            f"WHERE e.id > ? AND {where} ORDER BY e.id LIMIT ?",
            [after_id, *params, limit],
        )

    def batch_events(self, batch_id: int, limit: int = 200) -> list[Event]:
        """The latest events of one batch (oldest first), through the events_batch index."""
        return self._rows(
            "SELECT * FROM (SELECT * FROM events WHERE batch_id = ? AND job_id IS NULL "
            "ORDER BY id DESC LIMIT ?) AS latest ORDER BY id",
            [batch_id, limit],
        )
