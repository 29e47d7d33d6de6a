"""The queue's contract on every store back end: idempotent enqueue, atomic fenced claims,
retries with backoff, cancel, retry, rescue, pause — each change with its event row."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import Store
from batchdash.core.errors import NotFoundError
from batchdash.core.models import JobFilter, JobStatus, NewJob
from tests.contract.backends import Backend, counts, events, jobs

FAST = queue.RetryPolicy(base=0.01, factor=2.0, jitter=0.0)


async def test_enqueue_is_idempotent_on_queue_and_key(db: Store, backend: Backend) -> None:
    first = await queue.enqueue(db, "papers", jobs(5))
    again = await queue.enqueue(db, "papers", jobs(7))
    other = await queue.enqueue(db, "essays", jobs(2))
    assert (first.inserted, first.skipped) == (5, 0)
    assert (again.inserted, again.skipped) == (2, 5)
    assert other.inserted == 2
    assert counts(backend) == {("papers", "pending"): 7, ("essays", "pending"): 2}
    assert events(backend, 1) == ["enqueued"]


async def test_a_repeated_key_keeps_its_first_payload(db: Store) -> None:
    first = NewJob(key="k", payload={"v": "first"})
    result = await queue.enqueue(db, "q", [first, NewJob(key="k", payload={"v": "second"})])
    await queue.enqueue(db, "q", [NewJob(key="k", payload={"v": "third"}), *jobs(1)])
    assert (result.inserted, result.skipped) == (1, 1)
    listed = await db.read(lambda tx: tx.jobs.list_jobs())
    assert [(j.key, j.payload) for j in listed] == [("k", {"v": "first"}), ("k0", {"i": 0})]


async def test_claim_honours_priority_run_after_and_limit(db: Store) -> None:
    await queue.enqueue(db, "q", jobs(3, "low"))
    await queue.enqueue(db, "q", jobs(2, "high", priority=5))
    first = await queue.claim(db, "w1", 3, lease_seconds=30)
    assert [c.key for c in first] == ["high0", "high1", "low0"]
    assert len({c.token for c in first}) == 1 and all(c.attempts == 1 for c in first)
    rest = await queue.claim(db, "w2", 10, lease_seconds=30)
    assert [c.key for c in rest] == ["low1", "low2"]
    assert await queue.claim(db, "w3", 10, lease_seconds=30) == []


async def test_paused_queue_is_not_claimed_until_resumed(db: Store) -> None:
    await queue.enqueue(db, "paused", jobs(2))
    await queue.enqueue(db, "open", jobs(1, "o"))
    await queue.set_paused(db, "paused", True)
    claimed = await queue.claim(db, "w", 10, lease_seconds=30)
    assert [c.queue for c in claimed] == ["open"]
    await queue.resume(db, JobFilter(queues=("paused",)))
    assert len(await queue.claim(db, "w", 10, lease_seconds=30)) == 2


async def test_pausing_an_unknown_queue_is_an_error(db: Store) -> None:
    with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
        await queue.set_paused(db, "nope", True)


async def test_completion_is_fenced_by_the_claim_token(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(1))
    (stale,) = await queue.claim(db, "old", 1, lease_seconds=-1)  # lease already expired
    assert await queue.rescue_expired(db) == 1
    (fresh,) = await queue.claim(db, "new", 1, lease_seconds=30)
    assert fresh.attempts == 2 and fresh.token != stale.token
    assert await queue.report(db, "old", [queue.succeeded(stale, {"who": "old"})]) == []
    assert await queue.report(db, "new", [queue.succeeded(fresh, {"who": "new"})]) == [1]
    with backend.open_sync() as s:
        job = s.read(lambda tx: tx.jobs.get_job(1))
    assert (job.status, job.result, job.worker_id) == ("succeeded", {"who": "new"}, "new")
    assert events(backend, 1) == ["enqueued", "claimed", "rescued", "claimed", "succeeded"]


async def test_retryable_failures_back_off_then_fail(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(1, max_attempts=3))
    delays = []
    for attempt in (1, 2, 3):
        (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
        assert claimed.attempts == attempt
        outcome = queue.failed(claimed, "boom", kind="http_500", retryable=True, policy=FAST)
        await queue.report(db, "w", [outcome])
        if outcome.status == JobStatus.PENDING:
            delays.append(outcome.run_after - outcome.finished_at)
        with backend.open_sync() as s:
            job = s.read(lambda tx: tx.jobs.get_job(1))
        if attempt < 3:
            assert job.status == "pending" and job.run_after > time.time() - 1
            # Its retry delay, by the clock that set `run_after` (the same host's here).
            await asyncio.sleep(max(0.0, job.run_after - time.time()) + 0.001)
    assert len(delays) == 2 and delays[1] > delays[0] > 0
    assert job.status == "failed" and job.error == "boom" and job.error_kind == "http_500"
    assert events(backend, 1).count("retry_scheduled") == 2


async def test_permanent_failure_skips_retries(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(1, max_attempts=5))
    (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
    await queue.report(
        db, "w", [queue.failed(claimed, "400", kind="http_400", retryable=False, policy=FAST)]
    )
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.jobs.get_job(1)).status == "failed"


async def test_retry_after_is_honoured(db: Store) -> None:
    await queue.enqueue(db, "q", jobs(1))
    (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
    outcome = queue.failed(
        claimed, "429", kind="http_429", retryable=True, policy=FAST, retry_after=7
    )
    assert outcome.run_after - outcome.finished_at >= 7


async def test_cancel_pending_now_and_running_through_heartbeat(
    db: Store, backend: Backend
) -> None:
    await queue.enqueue(db, "q", jobs(2))
    (running,) = await queue.claim(db, "w", 1, lease_seconds=30)
    now_count, flagged = await queue.cancel(db, JobFilter(queues=("q",)))
    assert (now_count, flagged) == (1, 1)
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.jobs.get_job(2)).status == "cancelled"
        abort = s.write(
            lambda c: c.workers.heartbeat(
                "w", "busy", [(running.job_id, running.token)], 0, 0, 30, time.time()
            )
        )
    assert abort.cancel == [running.job_id]
    await queue.report(db, "w", [queue.cancelled(running)])
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.jobs.get_job(1)).status == "cancelled"


async def test_retry_brings_failed_and_cancelled_back(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(2, max_attempts=1))
    claimed = await queue.claim(db, "w", 2, lease_seconds=30)
    await queue.report(
        db, "w", [queue.failed(c, "x", kind="e", retryable=True, policy=FAST) for c in claimed]
    )
    assert counts(backend) == {("q", "failed"): 2}
    assert await queue.retry(db, JobFilter(statuses=("failed",))) == 2
    with backend.open_sync() as s:
        job = s.read(lambda tx: tx.jobs.get_job(1))
    assert (job.status, job.attempts) == ("pending", 0)
    assert counts(backend) == {("q", "pending"): 2}


async def test_unknown_ids_are_refused_before_any_change(db: Store) -> None:
    await queue.enqueue(db, "q", jobs(1))
    with pytest.raises(NotFoundError, match="unknown job id 99"):
        await queue.cancel(db, JobFilter(ids=(1, 99)))


async def test_rescue_counts_the_lost_attempt(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(1, "a", max_attempts=2))
    await queue.enqueue(db, "q", jobs(1, "b", max_attempts=1))
    await queue.claim(db, "dead", 2, lease_seconds=-1)
    rescued, unpaused = await queue.resume(db, JobFilter())
    assert rescued == 2 and unpaused == []
    with backend.open_sync() as s:
        a, b = s.read(lambda tx: tx.jobs.get_job(1)), s.read(lambda tx: tx.jobs.get_job(2))
    assert (a.status, a.attempts, a.error_kind) == ("pending", 1, "lease_expired")
    assert (b.status, b.attempts) == ("failed", 1)


async def test_claims_never_overlap_under_concurrency(backend: Backend) -> None:
    import asyncio

    setup = await backend.open()
    await queue.enqueue(setup, "q", jobs(500))
    await setup.close()
    stores = [await backend.open() for _ in range(4)]

    async def drain(s: Store, name: str) -> list[int]:
        got: list[int] = []
        while batch := await queue.claim(s, name, 7, lease_seconds=30):
            got += [c.job_id for c in batch]
            await queue.report(s, name, [queue.succeeded(c, None) for c in batch])
        return got

    results = await asyncio.gather(*(drain(s, f"w{i}") for i, s in enumerate(stores)))
    for s in stores:
        await s.close()
    claimed = [job_id for r in results for job_id in r]
    assert sorted(claimed) == list(range(1, 501))
    assert counts(backend) == {("q", "succeeded"): 500}


async def test_counts_table_matches_a_full_count(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "a", jobs(20))
    await queue.enqueue(db, "b", jobs(10))
    claimed = await queue.claim(db, "w", 15, lease_seconds=30)
    await queue.report(db, "w", [queue.succeeded(c, None) for c in claimed[:10]])
    await queue.cancel(db, JobFilter(queues=("b",)))
    with backend.open_sync() as s:
        listed = s.read(lambda tx: tx.jobs.list_jobs())
        truth = dict(Counter((j.queue, j.status) for j in listed))
        counted = s.read(
            lambda tx: {
                (q, st): tx.jobs.count_jobs(JobFilter(statuses=(st,), queues=(q,)))
                for q, st in truth
            }
        )
    assert counted == truth
    assert counts(backend) == truth
    assert JobStatus.SUCCEEDED in {st for _, st in truth}
