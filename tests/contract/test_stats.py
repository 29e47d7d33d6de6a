"""Dashboard totals on every back end: counts and spend from the kept totals, throughput
per time bucket, and pending work per queue — with real time, since PostgreSQL stamps
finishes and retry delays by the server's clock."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import Store
from batchdash.core.queue import Usage
from tests.contract.backends import jobs

FAST = queue.RetryPolicy(base=0.01, factor=2.0, jitter=0.0)


async def test_totals_spend_throughput_and_pending(db: Store) -> None:
    assert await db.read(lambda tx: tx.stats.last_local_finish()) is None
    await queue.enqueue(db, "work", jobs(6))
    await queue.enqueue(db, "qa-judge", jobs(1, "qa"))
    await queue.enqueue(db, "idle", jobs(2, "i"))
    await queue.set_paused(db, "idle", True)
    before = time.time() - 1.0  # a margin for the server's clock, read on this host too
    claimed = await queue.claim(db, "w", 7, lease_seconds=30)
    usage = Usage(input_tokens=100, output_tokens=10, cost=0.5)
    done = [queue.succeeded(c, {"ok": 1}, usage) for c in [*claimed[:4], claimed[6]]]
    late = queue.failed(
        claimed[4], "busy", kind="http_429", retryable=True, policy=FAST, retry_after=600
    )
    final = queue.failed(claimed[5], "bad", kind="http_400", retryable=False, policy=FAST)
    await queue.report(db, "w", [*done, late, final])
    after = time.time() + 1.0
    totals = await db.read(lambda tx: tx.stats.status_totals())
    assert {st: n for st, n in totals.items() if n} == {"succeeded": 5, "failed": 1, "pending": 3}
    work = await db.read(lambda tx: tx.stats.work_spend("qa-"))
    billed = len([c for c in done if c.job_id <= 6])  # the qa- queue's line is the judges'
    assert (work.input_tokens, work.cost) == (100 * billed, pytest.approx(0.5 * billed))
    # Six local finishes (5 succeeded, 1 failed) in the window, none before or after it.
    width = (after - before) / 2
    buckets = await db.read(lambda tx: tx.stats.finished_per_bucket(before - width, width, 4))
    assert sum(buckets) == 6 and buckets[0] == buckets[3] == 0
    last = await db.read(lambda tx: tx.stats.last_local_finish())
    assert last is not None and before <= last <= after
    first = await db.read(lambda tx: tx.stats.first_local_start(before, after))
    assert first is not None and before <= first <= last
    assert await db.read(lambda tx: tx.stats.first_local_start(after, after + 60)) is None
    pending = await db.read(lambda tx: tx.stats.local_pending_by_queue(time.time()))
    waiting = claimed[4].queue
    assert pending == {"idle": (2, 0), waiting: (1, 1)}


class Explaining:
    """A psycopg connection that records the plan of each statement before running it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        rows = self.conn.execute("EXPLAIN " + sql, params).fetchall()
        self.plans.append("\n".join(r["QUERY PLAN"] for r in rows))
        return self.conn.execute(sql, params)


def assert_index_plans(conn: Any) -> None:
    """Every throughput and pending query reads its partial index, never the jobs table."""
    from batchdash.core.db.postgres.stats import PgStats

    conn.execute("VACUUM ANALYZE jobs")
    explaining = Explaining(conn)
    stats = PgStats(explaining)  # type: ignore[arg-type]
    hour_ago = time.time() - 3600
    stats.finished_per_bucket(hour_ago, 60.0, 3)
    stats.first_local_start(hour_ago, hour_ago + 600)
    stats.last_local_finish()
    stats.local_pending_by_queue(time.time())
    indexes = ["jobs_local_done"] * 3 + ["jobs_local_pending"]
    for plan, index in zip(explaining.plans, indexes, strict=True):
        assert re.search(f"Index (Only )?Scan (Backward )?using {index} on jobs", plan), plan
        assert "Seq Scan" not in plan, plan


def test_throughput_and_pending_read_only_their_partial_indexes(pg_url: str) -> None:
    from batchdash.core.db import DbLocation
    from batchdash.core.db.postgres.store import PgSyncStore

    with PgSyncStore.open(DbLocation(url=pg_url)) as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(3000), time.time(), None))
        claimed = s.write(lambda tx: tx.jobs.claim("w", "t", 2900, 30.0, [], time.time()))
        outcomes = [queue.succeeded(c, None) for c in claimed]
        assert len(s.write(lambda tx: tx.jobs.finish("w", outcomes))) == 2900
        assert_index_plans(s.conn)
