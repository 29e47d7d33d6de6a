"""PostgreSQL repository: PgQueues (see the Queues Protocol in core/db/ports.py).

The same behaviour as `core/db/sqlite/queues.py`; queue names sort byte-wise (their column
is COLLATE "C"), as SQLite sorts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.postgres.events import add_events
from batchdash.core.errors import NotFoundError
from batchdash.core.models import QueueInfo

if TYPE_CHECKING:
    import psycopg


class PgQueues:
    """The queues repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def ensure_queue(self, name: str, now: float) -> None:
        """Create the queue if it does not exist yet."""
        self._conn.execute(
            "INSERT INTO queues (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (name, now),
        )

    def set_paused(self, queue: str, paused: bool, now: float) -> None:
        """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown."""
        row = self._conn.execute(
            "UPDATE queues SET paused = %s WHERE name = %s RETURNING name", (paused, queue)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown queue {queue!r}")
        add_events(
            self._conn, [(now, "paused" if paused else "unpaused", None, None, queue, None, None)]
        )

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its pause flag and job counts per status."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._conn.execute("SELECT queue, status, n FROM job_counts WHERE n > 0"):
            counts.setdefault(row["queue"], {})[row["status"]] = row["n"]
        return [
            QueueInfo(name=r["name"], paused=r["paused"], counts=counts.get(r["name"], {}))
            for r in self._conn.execute("SELECT name, paused FROM queues ORDER BY name")
        ]

    def require_queue(self, name: str) -> None:
        """Raise NotFoundError if the queue does not exist."""
        if self._conn.execute("SELECT 1 FROM queues WHERE name = %s", (name,)).fetchone() is None:
            raise NotFoundError(f"unknown queue {name!r}")

    def set_qa_rubric(self, queue: str, rubric_json: str | None) -> None:
        """Set (or with None, reset to the default) the QA rubric of a queue."""
        row = self._conn.execute(
            "UPDATE queues SET qa_rubric = %s WHERE name = %s RETURNING name", (rubric_json, queue)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown queue {queue!r}")

    def get_qa_rubric(self, queue: str) -> str | None:
        """A queue's QA rubric as stored (JSON text), None when it uses the default."""
        row = self._conn.execute(
            "SELECT qa_rubric FROM queues WHERE name = %s", (queue,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown queue {queue!r}")
        value: str | None = row["qa_rubric"]
        return value
