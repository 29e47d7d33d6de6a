"""PostgreSQL repository: PgStats, the dashboard's totals (see `Stats` in core/db/ports.py).

Counts and spend come from the trigger-kept `job_counts` and `qa_totals` (never a count
over jobs); throughput reads only the partial indexes `jobs_local_done` and
`jobs_local_pending`, whose predicates the WHERE clauses below repeat verbatim so the
planner can prove them. Whether a pending job is still waiting out a retry delay is judged
by the server's clock (`batchdash_now()`), the clock its `run_after` was set by, not the
caller's `now`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlshared import JOB_PENDING_SQL, sql_in
from batchdash.core.models import JobStatus, Spend

if TYPE_CHECKING:
    import psycopg

#: Jobs a local worker finished: the predicate of the `jobs_local_done` index (cancels and
#: remote-batch ingests are not throughput).
_LOCAL_DONE = (
    f"jobs WHERE status IN {sql_in({JobStatus.SUCCEEDED, JobStatus.FAILED})} AND batch_id IS NULL"
)


class PgStats:
    """The stats repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def clock(self, now: float) -> float:
        """The server's clock (heartbeats are stored on it), not the caller's `now`; inside a
        read, the snapshot's own moment."""
        row = self._conn.execute("SELECT batchdash_now() AS v").fetchone()
        return now if row is None else float(row["v"])

    def status_totals(self) -> dict[str, int]:
        """Jobs per status over all queues, from job_counts."""
        rows = self._conn.execute("SELECT status, sum(n) AS n FROM job_counts GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    def work_spend(self, qa_prefix: str) -> Spend:
        """What the jobs themselves spent, from job_counts, leaving out QA-batch queues.

        The lines of a QA batch are jobs in a `qa_prefix` queue whose cost is also on their
        verdicts (`qa_spend`); counting both would bill the judges twice.
        """
        [row] = self._conn.execute(
            "SELECT coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o, "
            "coalesce(sum(cost), 0) AS c FROM job_counts WHERE NOT starts_with(queue, %s)",
            (qa_prefix,),
        ).fetchall()
        return Spend(int(row["i"]), int(row["o"]), float(row["c"]))

    def qa_spend(self) -> Spend:
        """What the QA judges spent (every stored verdict), from the trigger-kept total."""
        row = self._conn.execute(
            "SELECT input_tokens, output_tokens, cost FROM qa_totals"
        ).fetchone()
        if row is None:
            return Spend(0, 0, 0.0)
        return Spend(int(row["input_tokens"]), int(row["output_tokens"]), float(row["cost"]))

    def finished_per_bucket(self, start: float, width: float, buckets: int) -> list[int]:
        """Jobs local workers finished (succeeded or failed) per `width`-second bucket.

        One statement, one index range count per bucket; bounds are `start + width * i`
        as SQLite's store computes them, so a job on a boundary falls in the same bucket.
        """
        rows = self._conn.execute(
            f"SELECT (SELECT count(*) FROM {_LOCAL_DONE} "
            "AND finished_at >= %(s)s + %(w)s * i AND finished_at < %(s)s + %(w)s * (i + 1)) AS n "
            "FROM generate_series(0, %(b)s - 1) AS i ORDER BY i",
            {"s": start, "w": width, "b": buckets},
        )
        return [int(r["n"]) for r in rows]

    def first_local_start(self, since: float, until: float) -> float | None:
        """When the first job a local worker finished in [since, until) started (or finished)."""
        row = self._conn.execute(
            f"SELECT coalesce(started_at, finished_at) AS t FROM {_LOCAL_DONE} "
            "AND finished_at >= %s AND finished_at < %s ORDER BY finished_at LIMIT 1",
            (since, until),
        ).fetchone()
        return None if row is None else float(row["t"])

    def last_local_finish(self) -> float | None:
        """When a local worker last finished a job (one index seek)."""
        row = self._conn.execute(f"SELECT max(finished_at) AS t FROM {_LOCAL_DONE}").fetchone()
        return None if row is None or row["t"] is None else float(row["t"])

    def local_pending_by_queue(self, now: float) -> dict[str, tuple[int, int]]:
        """(pending, of which waiting out a retry delay) per queue, local jobs only.

        Remote-batch lines are pending too until ingested, but no worker claims them. One
        pass over the `jobs_local_pending` index; "waiting" is by the server's clock, so
        `now` (the caller's) is not used.
        """
        rows = self._conn.execute(
            "SELECT queue, count(*) AS n, count(*) FILTER (WHERE run_after > batchdash_now()) "
            f"AS waiting FROM jobs WHERE status = {JOB_PENDING_SQL} AND batch_id IS NULL "
            "GROUP BY queue"
        )
        return {r["queue"]: (int(r["n"]), int(r["waiting"])) for r in rows}
