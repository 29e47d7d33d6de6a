"""Totals and rates for the dashboard and `--once`: counts, spend, throughput."""

from __future__ import annotations

import sqlite3

from batchdash.core.db.sqlshared import (
    JOB_PENDING_SQL,
    sql_in,
)
from batchdash.core.models import JobStatus, Spend

#: Jobs a local worker finished: the predicate of the `jobs_local_done` index, verbatim,
#: so the planner can use it (cancels and remote-batch ingests are not throughput).
_LOCAL_DONE = (
    "jobs INDEXED BY jobs_local_done WHERE status IN "
    f"{sql_in({JobStatus.SUCCEEDED, JobStatus.FAILED})} AND batch_id IS NULL"
)

#: Local pending jobs: the claim index's predicate verbatim, so the planner can use it.
_CLAIMABLE = f"status = {JOB_PENDING_SQL} AND batch_id IS NULL"
#: Local pending jobs waiting out a retry delay, per queue: the claim index is ordered by
#: (priority DESC, run_after), so each priority's waiting jobs are one range of it.
_WAITING_BY_QUEUE = (
    "WITH RECURSIVE p(v) AS ("
    f"SELECT (SELECT priority FROM jobs INDEXED BY jobs_claim WHERE {_CLAIMABLE} "
    "ORDER BY priority DESC LIMIT 1) "
    f"UNION ALL SELECT (SELECT priority FROM jobs INDEXED BY jobs_claim WHERE {_CLAIMABLE} "
    "AND priority < p.v ORDER BY priority DESC LIMIT 1) FROM p WHERE p.v IS NOT NULL) "
    f"SELECT queue, count(*) FROM p JOIN jobs INDEXED BY jobs_claim ON {_CLAIMABLE} "
    "AND priority = p.v AND run_after > ? GROUP BY queue"
)


class SqliteStats:
    """Dashboard totals on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def clock(self, now: float) -> float:
        """The caller's `now`: every time SQLite stores was read from its callers' clocks."""
        return now

    def status_totals(self) -> dict[str, int]:
        """Jobs per status over all queues, from job_counts."""
        return {
            r["status"]: int(r["n"])
            for r in self._conn.execute(
                "SELECT status, sum(n) AS n FROM job_counts GROUP BY status"
            )
        }

    def work_spend(self, qa_prefix: str) -> Spend:
        """What the jobs themselves spent, from job_counts, leaving out QA-batch queues.

        The lines of a QA batch are jobs in a `qa_prefix` queue whose cost is also on their
        verdicts (`qa_spend`); counting both would bill the judges twice.
        """
        row = self._conn.execute(
            "SELECT coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            "coalesce(sum(cost), 0) FROM job_counts WHERE substr(queue, 1, length(?)) <> ?",
            (qa_prefix, qa_prefix),
        ).fetchone()
        return Spend(int(row[0]), int(row[1]), float(row[2]))

    def qa_spend(self) -> Spend:
        """What the QA judges spent (every stored verdict), from the trigger-kept total."""
        row = self._conn.execute(
            "SELECT input_tokens, output_tokens, cost FROM qa_totals"
        ).fetchone()
        return Spend(0, 0, 0.0) if row is None else Spend(int(row[0]), int(row[1]), float(row[2]))

    def finished_per_bucket(self, start: float, width: float, buckets: int) -> list[int]:
        """Jobs local workers finished (succeeded or failed) per `width`-second bucket.

        Read from the `jobs_local_done` index alone over the window, whatever the table size.
        One `count(*)` range per bucket is ~6x faster than a GROUP BY over a computed bucket
        (3 ms vs 19 ms for 90,000 finished jobs in the window).
        """
        return [
            int(
                self._conn.execute(
                    f"SELECT count(*) FROM {_LOCAL_DONE} AND finished_at >= ? AND finished_at < ?",
                    (start + width * i, start + width * (i + 1)),
                ).fetchone()[0]
            )
            for i in range(buckets)
        ]

    def first_local_start(self, since: float, until: float) -> float | None:
        """When the first job a local worker finished in [since, until) started (or finished)."""
        row = self._conn.execute(
            f"SELECT coalesce(started_at, finished_at) FROM {_LOCAL_DONE} "
            "AND finished_at >= ? AND finished_at < ? ORDER BY finished_at LIMIT 1",
            (since, until),
        ).fetchone()
        return None if row is None else float(row[0])

    def last_local_finish(self) -> float | None:
        """When a local worker last finished a job (one index seek)."""
        value = self._conn.execute(f"SELECT max(finished_at) FROM {_LOCAL_DONE}").fetchone()[0]
        return None if value is None else float(value)

    def local_pending_by_queue(self, now: float) -> dict[str, tuple[int, int]]:
        """(pending, of which waiting out a retry delay) per queue, local jobs only.

        Remote-batch lines are pending too until ingested, but no worker claims them. The
        pending counts come from job_counts (its `local_n`, kept by triggers); the waiting
        ones from the claim index, whose entries are exactly the local pending jobs: one
        `run_after > now` range per priority it holds (the priorities found by hopping
        from one to the next lower), reading table rows only for the jobs that wait. A
        plain pass over the index read every pending job each refresh (19 ms at 300,000
        pending; this takes 0.1 ms).
        """
        waiting = dict(self._conn.execute(_WAITING_BY_QUEUE, (now,)).fetchall())
        return {
            r[0]: (int(r[1]), int(waiting.get(r[0], 0)))
            for r in self._conn.execute(
                f"SELECT queue, local_n FROM job_counts WHERE status = {JOB_PENDING_SQL} "
                "AND local_n > 0"
            )
        }
