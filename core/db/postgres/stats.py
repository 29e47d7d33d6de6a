"""PostgreSQL repository: PgStats, the dashboard's totals (see `Stats` in core/db/ports.py).

Counts, local pending jobs and spend come from the trigger-kept `job_counts` and
`qa_totals` (never a count over jobs). Throughput comes from `local_finishes`, local
finishes per epoch second kept by the same trigger (migration 0005), plus at each bucket
edge the part of one second read on the `jobs_local_done` index: exact counts whose cost
grows with the number of buckets, not with the finishes in them. The jobs WHERE clauses
repeat the partial indexes' predicates verbatim so the planner can prove them. Whether a
pending job is still waiting out a retry delay is judged by the server's clock
(`batchdash_now()`), the clock its `run_after` was set by, not the caller's `now`.
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

#: Finishes per bucket, exactly, from whole seconds plus one partial second per bound.
#: For each bound t (in second `sec`), `head` is the finishes of that second before t, read
#: on the index over the nearer part of the second (`sec`..t, or the kept second minus
#: t..sec+1), so at most half a second of finishes per bound. A bucket is then its bounds'
#: whole seconds from `local_finishes`, minus its first bound's head, plus its last's.
#: The range on `local_finishes` is plain arithmetic on the parameters (not a subquery)
#: so it reaches the kept table's primary key through the view.
_BUCKETS_SQL = f"""
WITH bounds AS (
    SELECT i, t, floor(t)::bigint AS sec FROM generate_series(0, %(b)s) AS i,
        LATERAL (SELECT %(s)s::float8 + %(w)s::float8 * i AS t) AS x
), heads AS (
    SELECT i, sec, CASE WHEN t - sec <= 0.5
        THEN (SELECT count(*) FROM {_LOCAL_DONE} AND finished_at >= sec AND finished_at < t)
        ELSE (SELECT coalesce(sum(n), 0) FROM local_finishes WHERE second = sec)
             - (SELECT count(*) FROM {_LOCAL_DONE} AND finished_at >= t AND finished_at < sec + 1)
        END AS head
    FROM bounds
), seconds AS (
    SELECT second, n FROM local_finishes
    WHERE second >= floor(%(s)s::float8)::bigint
      AND second < floor(%(s)s::float8 + %(w)s::float8 * %(b)s)::bigint
)
SELECT coalesce(sum(seconds.n), 0) - a.head + z.head AS n
FROM heads AS a JOIN heads AS z ON z.i = a.i + 1
LEFT JOIN seconds ON seconds.second >= a.sec AND seconds.second < z.sec
GROUP BY a.i, a.head, z.head ORDER BY a.i
"""


#: The latest local finish, read from the end of the `jobs_local_done` index.
LAST_LOCAL_FINISH_SQL = (
    f"SELECT finished_at AS t FROM {_LOCAL_DONE} AND finished_at IS NOT NULL "
    "ORDER BY finished_at DESC LIMIT 1"
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

        Bounds are `start + width * i` as SQLite's store computes them, so a job on a
        boundary falls in the same bucket. See `_BUCKETS_SQL` for how it stays exact.
        """
        rows = self._conn.execute(_BUCKETS_SQL, {"s": start, "w": width, "b": buckets})
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
        """When a local worker last finished a job (one index seek).

        The seek is spelled out: for `max(finished_at)` the planner weighs the index's end
        against a scan of it by the statistics, and with statistics taken before a drain
        (none finished) it scanned every finished job (35 ms at 200,000, growing with them).
        """
        row = self._conn.execute(LAST_LOCAL_FINISH_SQL).fetchone()
        return None if row is None else float(row["t"])

    def local_pending_by_queue(self, now: float) -> dict[str, tuple[int, int]]:
        """(pending, of which waiting out a retry delay) per queue, local jobs only.

        Remote-batch lines are pending too until ingested, but no worker claims them. The
        pending counts are job_counts' `local_n`; the waiting ones a range of the
        `jobs_local_pending` index per queue (`run_after` later than the server's clock),
        so only waiting jobs are read. `now` (the caller's clock) is not used.
        """
        rows = self._conn.execute(
            "SELECT c.queue, c.local_n AS n, (SELECT count(*) FROM jobs j "
            f"WHERE j.status = {JOB_PENDING_SQL} AND j.batch_id IS NULL "
            'AND j.queue = c.queue COLLATE "C" AND j.run_after > batchdash_now()) AS waiting '
            f"FROM job_counts c WHERE c.status = {JOB_PENDING_SQL} AND c.local_n > 0"
        )
        return {r["queue"]: (int(r["n"]), int(r["waiting"])) for r in rows}
