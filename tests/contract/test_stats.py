"""Dashboard totals on every back end: counts and spend from the kept totals, throughput
per time bucket, and pending work per queue — with real time, since PostgreSQL stamps
finishes and retry delays by the server's clock."""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from typing import Any

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import Store
from batchdash.core.models import Claim, JobFilter
from batchdash.core.queue import Usage
from tests.contract.backends import Backend, jobs

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


async def test_jobs_waiting_out_a_retry_delay_are_counted_at_every_priority(db: Store) -> None:
    # Pending jobs of several priorities in two queues; the first of each (queue, priority)
    # fails and waits out a retry delay, the others succeed; then fresh jobs arrive.
    groups = [("a", 5), ("a", 0), ("a", -3), ("b", 0)]
    for name, priority in groups:
        await queue.enqueue(db, name, jobs(2, f"p{priority}-", priority=priority))
    claimed = await queue.claim(db, "w", 8, lease_seconds=30)
    first = {(c.queue, c.key.split("-")[0]): c for c in reversed(claimed)}
    waiting = {c.job_id for c in first.values()}
    await queue.report(
        db,
        "w",
        [
            queue.failed(c, "busy", kind="http_429", retryable=True, policy=FAST, retry_after=600)
            if c.job_id in waiting
            else queue.succeeded(c, None)
            for c in claimed
        ],
    )
    await queue.enqueue(db, "a", [*jobs(1, "new5-", priority=5), *jobs(1, "new-3-", priority=-3)])
    await queue.enqueue(db, "b", jobs(1, "new9-", priority=9))
    pending = await db.read(lambda tx: tx.stats.local_pending_by_queue(time.time()))
    assert pending == {"a": (5, 3), "b": (2, 1)}


#: A fixed epoch for finishes at known times (worker-reported `finished_at` is stored as is).
T0 = 1_700_000_000.0


def finish_at(store: Any, times: list[float], fail_every: int = 0) -> None:
    """Claim and finish one new local job per time, reported as finished at that time."""

    def by_id(c: Claim) -> int:
        return c.job_id

    new = jobs(len(times), f"t{len(times)}-")
    store.write(lambda tx: tx.jobs.enqueue("timed", "noop", new, time.time(), None))
    claimed = store.write(lambda tx: tx.jobs.claim("w", "t", len(times), 30.0, [], time.time()))
    outcomes = [
        dataclasses.replace(
            queue.failed(c, "bad", kind="x", retryable=False, policy=FAST)
            if fail_every and i % fail_every == 0
            else queue.succeeded(c, None),
            finished_at=at,
        )
        for i, (c, at) in enumerate(zip(sorted(claimed, key=by_id), times, strict=True))
    ]
    assert len(store.write(lambda tx: tx.jobs.finish("w", outcomes))) == len(times)


def expected(times: list[float], start: float, width: float, buckets: int) -> list[int]:
    """The buckets counted the obvious way, with the store's bounds."""
    bounds = [start + width * i for i in range(buckets + 1)]
    return [sum(1 for t in times if lo <= t < hi) for lo, hi in itertools.pairwise(bounds)]


def test_throughput_buckets_are_exact_across_seconds_and_bucket_bounds(backend: Backend) -> None:
    # 400 finishes 0.05 s apart from T0 + 0.013 (20 per second), a fifth of them failures,
    # plus finishes exactly on whole seconds and on the bounds asked for below.
    times = [T0 + 0.013 + 0.05 * k for k in range(400)] + [T0 + 3.0, T0 + 7.0, T0 + 2.3]
    with backend.open_sync() as s:
        finish_at(s, times, fail_every=5)
        for start, width, buckets in [
            (T0 - 0.7, 2.5, 10),  # bounds 0.3 into a second: the near half on the index
            (T0 + 0.9, 3.0, 7),  # 0.9 into a second: the kept second minus the far part
            (T0 + 0.3, 0.8, 30),  # several bounds inside one second
            (T0 + 2.3, 1.0, 5),  # a bound on a finish: it falls in the later bucket
            (T0, 30.0, 1),  # whole seconds only
            (T0 + 5.5, 0.5, 4),  # bounds at exactly half a second
        ]:
            got = s.read(lambda tx: tx.stats.finished_per_bucket(start, width, buckets))  # noqa: B023
            assert got == expected(times, start, width, buckets), (start, width, buckets)
        # A retried failure is no longer a finish: its second loses it.
        assert s.write(lambda tx: tx.jobs.retry(JobFilter(statuses=("failed",)), time.time()))
        kept = [t for i, t in enumerate(times) if i % 5]
        got = s.read(lambda tx: tx.stats.finished_per_bucket(T0 - 0.7, 2.5, 10))
        assert got == expected(kept, T0 - 0.7, 2.5, 10)


class Explaining:
    """A psycopg connection that records the plan of each statement before running it."""

    def __init__(self, conn: Any, explain: str = "EXPLAIN ") -> None:
        self.conn = conn
        self.explain = explain
        self.plans: list[list[Any]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        rows = self.conn.execute(self.explain + sql, params).fetchall()
        self.plans.append([r["QUERY PLAN"] for r in rows])
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
    for lines, index in zip(explaining.plans, indexes, strict=True):
        plan = "\n".join(lines)
        assert re.search(f"Index (Only )?Scan (Backward )?using {index} on jobs", plan), plan
        assert not re.search(r"Seq Scan on jobs\b", plan), plan


def test_throughput_and_pending_read_only_their_partial_indexes(pg_url: str) -> None:
    from batchdash.core.db import DbLocation
    from batchdash.core.db.postgres.store import PgSyncStore

    with PgSyncStore.open(DbLocation(url=pg_url)) as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(3000), time.time(), None))
        claimed = s.write(lambda tx: tx.jobs.claim("w", "t", 2900, 30.0, [], time.time()))
        outcomes = [queue.succeeded(c, None) for c in claimed]
        assert len(s.write(lambda tx: tx.jobs.finish("w", outcomes))) == 2900
        assert_index_plans(s.conn)


def index_rows(plan: dict[str, Any], index: str) -> int:
    """Index entries the nodes of an EXPLAIN ANALYZE (JSON) plan read from `index`."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Index Name") == index else 0
    return int(own) + sum(index_rows(p, index) for p in plan.get("Plans", []))


def test_sparkline_reads_the_index_only_over_partial_seconds(pg_url: str) -> None:
    from batchdash.core.db import DbLocation
    from batchdash.core.db.postgres.stats import PgStats
    from batchdash.core.db.postgres.store import PgSyncStore

    # 3,000 finishes over 30 s (100 a second); 3 buckets of 10 s whose bounds are 0.2 s
    # into a second: the index is read for at most half a second at each of the 4 bounds.
    times = [T0 + 0.005 + 0.01 * k for k in range(3000)]
    with PgSyncStore.open(DbLocation(url=pg_url)) as s:
        finish_at(s, times)
        s.conn.execute("VACUUM ANALYZE jobs")
        explaining = Explaining(s.conn, "EXPLAIN (ANALYZE, FORMAT JSON) ")
        got = PgStats(explaining).finished_per_bucket(T0 + 0.2, 10.0, 3)  # type: ignore[arg-type]
    assert got == expected(times, T0 + 0.2, 10.0, 3) and sum(got) > 2900
    [[[plan]]] = explaining.plans  # one statement, one row: the JSON plan, parsed
    read = index_rows(plan["Plan"], "jobs_local_done")
    assert 0 < read <= 4 * 50, read
