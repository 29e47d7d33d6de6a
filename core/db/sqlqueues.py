"""The queues repository, written once for both back ends (shared SQL with `?` placeholders,
converted by the back end's `sql` function; see `core/db/sqlevents.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchdash.core.actor import Actor, event_detail
from batchdash.core.db.sqlevents import insert_events
from batchdash.core.errors import NotFoundError
from batchdash.core.models import QueueInfo


class SqlQueues:
    """Queues on one connection: creation, pause, listing, QA rubric."""

    def __init__(self, conn: Any, sql: Callable[[str], str]) -> None:
        self._conn = conn
        self._sql = sql

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._conn.execute(self._sql(sql), params).fetchone()

    def ensure_queue(self, name: str, now: float) -> None:
        """Create the queue if it does not exist yet."""
        self._conn.execute(
            self._sql(
                "INSERT INTO queues (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
            ),
            (name, now),
        )

    def set_paused(self, queue: str, paused: bool, now: float, actor: Actor | None = None) -> None:
        """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown."""
        if (
            self._one("UPDATE queues SET paused = ? WHERE name = ? RETURNING name", (paused, queue))
            is None
        ):
            raise NotFoundError(f"unknown queue {queue!r}")
        kind = "paused" if paused else "unpaused"
        detail = event_detail(actor)
        insert_events(self._conn, self._sql, [(now, kind, None, None, queue, None, detail)])

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its pause flag and job counts per status."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._conn.execute("SELECT queue, status, n FROM job_counts WHERE n > 0"):
            counts.setdefault(row["queue"], {})[row["status"]] = row["n"]
        return [
            QueueInfo(name=r["name"], paused=bool(r["paused"]), counts=counts.get(r["name"], {}))
            for r in self._conn.execute("SELECT name, paused FROM queues ORDER BY name")
        ]

    def require_queue(self, name: str) -> None:
        """Raise NotFoundError if the queue does not exist."""
        if self._one("SELECT 1 FROM queues WHERE name = ?", (name,)) is None:
            raise NotFoundError(f"unknown queue {name!r}")

    def set_qa_rubric(self, queue: str, rubric_json: str | None) -> None:
        """Set (or with None, reset to the default) the QA rubric of a queue."""
        sql = "UPDATE queues SET qa_rubric = ? WHERE name = ? RETURNING name"
        if self._one(sql, (rubric_json, queue)) is None:
            raise NotFoundError(f"unknown queue {queue!r}")

    def get_qa_rubric(self, queue: str) -> str | None:
        """A queue's QA rubric as stored (JSON text), None when it uses the default."""
        row = self._one("SELECT qa_rubric FROM queues WHERE name = ?", (queue,))
        if row is None:
            raise NotFoundError(f"unknown queue {queue!r}")
        value: str | None = row["qa_rubric"]
        return value
