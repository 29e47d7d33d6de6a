"""The queues repository, written once for both back ends (shared SQL with `?` placeholders,
converted by the back end's `sql` function; see `core/db/sqlevents.py`)."""

from __future__ import annotations

from typing import Any

from batchdash.core.actor import Actor, event_detail
from batchdash.core.db.sqlevents import insert_events
from batchdash.core.db.sqlshared import SharedSqlRepository
from batchdash.core.errors import BudgetError, NotFoundError
from batchdash.core.models import PAUSE_BUDGET, PAUSE_MANUAL, QueueInfo
from batchdash.core.pricing import usd as price_text

#: Each queue with its budget, pause reason and spend (`queue_spend`: a view over the
#: trigger-kept job_counts and qa_queue_spend, so no job is read).
_QUEUE_ROWS = (
    "SELECT q.name, q.paused, q.budget_usd, q.pause_reason, coalesce(s.spend, 0) AS spend "
    "FROM queues q LEFT JOIN queue_spend s ON s.queue = q.name"
)


class SqlQueues(SharedSqlRepository):
    """Queues on one connection: creation, pause, listing, QA rubric."""

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
        """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown.

        Resuming a queue whose spend reached its budget raises BudgetError: it would only
        pause again at its next finished job, after spending more.
        """
        if not paused:
            info = self.get_queue(queue)
            if info.budget_reached:
                raise BudgetError(
                    f"queue {queue!r} spent {price_text(info.spend_usd)} of its "
                    f"{price_text(info.budget_usd or 0.0)} budget: "
                    "raise or clear the budget to resume it"
                )
        self._pause(queue, paused, PAUSE_MANUAL if paused else None, now, actor)

    def _pause(
        self, queue: str, paused: bool, reason: str | None, now: float, actor: Actor | None = None
    ) -> None:
        sql = "UPDATE queues SET paused = ?, pause_reason = ? WHERE name = ? RETURNING name"
        if self._one(sql, (paused, reason, queue)) is None:
            raise NotFoundError(f"unknown queue {queue!r}")
        if reason != PAUSE_BUDGET:  # a trigger writes the budget pause's event
            kind = "paused" if paused else "unpaused"
            detail = event_detail(actor)
            insert_events(self._conn, self._sql, [(now, kind, None, None, queue, None, detail)])

    def set_budget(self, queue: str, usd: float | None, now: float) -> QueueInfo:
        """Set (or with None, clear) a queue's budget in USD, pausing or resuming it to match.

        A budget at or below the spend pauses the queue (reason "budget"); a higher budget,
        or none, resumes a queue the budget had paused. Returns the queue as it is now.
        """
        if (
            self._one(
                "UPDATE queues SET budget_usd = ? WHERE name = ? RETURNING name", (usd, queue)
            )
            is None
        ):
            raise NotFoundError(f"unknown queue {queue!r}")
        detail = "cleared" if usd is None else price_text(usd)
        insert_events(self._conn, self._sql, [(now, "budget", None, None, queue, None, detail)])
        info = self.get_queue(queue)
        if info.budget_reached and not info.paused:
            self._pause(queue, True, PAUSE_BUDGET, now)
        elif info.pause_reason == PAUSE_BUDGET and not info.budget_reached:
            self._pause(queue, False, None, now)
        else:
            return info
        return self.get_queue(queue)

    def get_queue(self, name: str) -> QueueInfo:
        """One queue with its counts, budget and spend; NotFoundError if unknown."""
        row = self._one(f"{_QUEUE_ROWS} WHERE q.name = ?", (name,))
        if row is None:
            raise NotFoundError(f"unknown queue {name!r}")
        counts = {
            r["status"]: int(r["n"])
            for r in self._conn.execute(
                self._sql("SELECT status, n FROM job_counts WHERE queue = ? AND n > 0"), (name,)
            )
        }
        return _queue_info(row, counts)

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with its pause flag, job counts per status, budget and spend."""
        counts: dict[str, dict[str, int]] = {}
        for row in self._conn.execute("SELECT queue, status, n FROM job_counts WHERE n > 0"):
            counts.setdefault(row["queue"], {})[row["status"]] = int(row["n"])
        rows = self._conn.execute(f"{_QUEUE_ROWS} ORDER BY q.name")
        return [_queue_info(r, counts.get(r["name"], {})) for r in rows]

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


def _queue_info(row: Any, counts: dict[str, int]) -> QueueInfo:
    """A QueueInfo from a `_QUEUE_ROWS` row and the queue's counts."""
    budget = row["budget_usd"]
    return QueueInfo(
        name=row["name"],
        paused=bool(row["paused"]),
        counts=counts,
        budget_usd=None if budget is None else float(budget),
        pause_reason=row["pause_reason"],
        spend_usd=float(row["spend"]),
    )
