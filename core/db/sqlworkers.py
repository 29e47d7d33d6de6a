"""The workers repository's shared half, written once for both back ends.

Its SQL is the dialect SQLite and PostgreSQL share, with `?` placeholders that the back
end's `sql` function converts (see `core/db/sqlevents.py`). Registration, heartbeats,
release, state changes and staleness stay per back end (`sqlite/workers.py`,
`postgres/workers.py`): PostgreSQL stores and compares those times on the server's clock,
since workers on several hosts share the table, and writes held jobs over `unnest`.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchdash.core.actor import Actor
from batchdash.core.db.sqlevents import insert_events, stop_events
from batchdash.core.db.sqlshared import (
    LIVE_WORKER_STATES_SQL,
    SharedSqlRepository,
    _worker,
    member_of,
)
from batchdash.core.models import Worker


class SqlWorkers(SharedSqlRepository):
    """Worker rows on one connection (sqlite3 or psycopg: both `execute` alike)."""

    def set_worker_note(self, worker_id: str, note: str | None) -> None:
        """Set (or clear, with None) the note shown beside a worker's state."""
        self._run("UPDATE workers SET note = ? WHERE id = ?", (note, worker_id))

    def list_workers(self) -> list[Worker]:
        """All workers, most recent heartbeat first."""
        rows = self._run("SELECT * FROM workers ORDER BY heartbeat_at DESC").fetchall()
        return [_worker(r) for r in rows]

    def request_stop(
        self, worker_ids: Sequence[str], now: float, actor: Actor | None = None
    ) -> list[str]:
        """Ask live workers to drain and stop at their next heartbeat; returns those asked."""
        among, params = member_of("id", worker_ids, self.ARRAYS)
        rows = self._run(
            f"UPDATE workers SET stop_requested = TRUE WHERE {among} "
            f"AND state IN {LIVE_WORKER_STATES_SQL} RETURNING id",
            params,
        ).fetchall()
        asked = sorted(r["id"] for r in rows)
        insert_events(self._conn, self._sql, stop_events(asked, now, actor))
        return asked
