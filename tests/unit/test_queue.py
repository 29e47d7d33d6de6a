"""The queue's contract, on a real SQLite file: idempotent enqueue, atomic fenced claims,
retries with backoff, cancel, retry, rescue, pause — each change with its event row."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from batchdash.core import queue, store
from batchdash.core.models import JobFilter, JobStatus, NewJob
from batchdash.core.store import NotFoundError, Store, StoreError, SyncStore

FAST = queue.RetryPolicy(base=0.01, factor=2.0, jitter=0.0)


def jobs(n: int, prefix: str = "k", **kw: object) -> list[NewJob]:
    return [NewJob(key=f"{prefix}{i}", payload={"i": i}, **kw) for i in range(n)]  # type: ignore[arg-type]


@pytest.fixture
async def db(db_path: Path) -> Store:
    opened = await Store.open(db_path)
    yield opened  # type: ignore[misc]
    await opened.close()


def counts(path: Path) -> dict[tuple[str, str], int]:
    with SyncStore.open(path) as s:
        return {(q.name, st): n for q in store.list_queues(s.conn) for st, n in q.counts.items()}


def events(path: Path, job_id: int) -> list[str]:
    with SyncStore.open(path) as s:
        return [e.kind for e in store.list_events(s.conn, job_id)]


async def test_database_is_private_wal_and_migrated_once(db_path: Path) -> None:
    s = SyncStore.open(db_path)
    s.close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with SyncStore.open(db_path) as again:
        assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def test_v2_results_and_payloads_move_to_their_own_tables(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.executescript("".join(store._MIGRATIONS[:2]) + "PRAGMA user_version = 2;")
    raw.execute("INSERT INTO queues (name, created_at) VALUES ('q', 0)")
    raw.executemany(
        "INSERT INTO jobs (queue, key, handler, payload, status, created_at, updated_at, "
        "result) VALUES ('q', ?, 'echo', ?, ?, 0, 0, ?)",
        [
            ("done", '{"n": 1}', "succeeded", '{"answer": 42}'),
            ("todo", '{"n": 2}', "pending", None),
        ],
    )
    raw.commit()
    raw.close()
    with SyncStore.open(db_path) as s:
        done, todo = store.list_jobs(s.conn)
        assert (done.result, todo.result) == ({"answer": 42}, None)
        assert (done.payload, todo.payload) == ({"n": 1}, {"n": 2})
        light = store.list_jobs(s.conn, with_bodies=False)[0]
        assert (light.payload, light.result) == (None, None)
        columns = [r["name"] for r in s.conn.execute("PRAGMA table_info(jobs)")]
        assert "result" not in columns and "payload" not in columns
        [claimed] = store._transaction(
            s.conn, lambda c: store.claim(c, "w", "t", 5, 60.0, (), time.time())
        )
        assert claimed.payload == {"n": 2}


async def test_bulk_writes_checkpoint_aside_and_keep_the_wal_short(
    db: Store, db_path: Path
) -> None:
    big = [NewJob(key=f"k{i}", payload={"text": "x" * 4000}) for i in range(1200)]
    async with db.bulk_writes():
        for start in range(0, len(big), 100):  # 12 writes of ~100 pages each
            await queue.enqueue(db, "bulk", big[start : start + 100])
    wal_bytes = Path(f"{db_path}-wal").stat().st_size
    assert wal_bytes < 6 * 100 * 4096, "the WAL kept growing: it never started over"
    with SyncStore.open(db_path) as s:
        assert store.count_jobs(s.conn, store.ALL_JOBS) == len(big)
    assert await db.read(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 1000


def test_newer_schema_is_refused_with_a_clear_message(db_path: Path) -> None:
    SyncStore.open(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this batchdash"):
        SyncStore.open(db_path)


async def test_enqueue_is_idempotent_on_queue_and_key(db: Store, db_path: Path) -> None:
    first = await queue.enqueue(db, "papers", jobs(5))
    again = await queue.enqueue(db, "papers", jobs(7))
    other = await queue.enqueue(db, "essays", jobs(2))
    assert (first.inserted, first.skipped) == (5, 0)
    assert (again.inserted, again.skipped) == (2, 5)
    assert other.inserted == 2
    assert counts(db_path) == {("papers", "pending"): 7, ("essays", "pending"): 2}
    assert events(db_path, 1) == ["enqueued"]


async def test_a_repeated_key_keeps_its_first_payload(db: Store) -> None:
    first = NewJob(key="k", payload={"v": "first"})
    result = await queue.enqueue(db, "q", [first, NewJob(key="k", payload={"v": "second"})])
    await queue.enqueue(db, "q", [NewJob(key="k", payload={"v": "third"}), *jobs(1)])
    assert (result.inserted, result.skipped) == (1, 1)
    listed = await db.read(store.list_jobs)
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


async def test_completion_is_fenced_by_the_claim_token(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(1))
    (stale,) = await queue.claim(db, "old", 1, lease_seconds=-1)  # lease already expired
    assert await queue.rescue_expired(db) == 1
    (fresh,) = await queue.claim(db, "new", 1, lease_seconds=30)
    assert fresh.attempts == 2 and fresh.token != stale.token
    assert await queue.report(db, "old", [queue.succeeded(stale, {"who": "old"})]) == []
    assert await queue.report(db, "new", [queue.succeeded(fresh, {"who": "new"})]) == [1]
    with SyncStore.open(db_path) as s:
        job = store.get_job(s.conn, 1)
    assert (job.status, job.result, job.worker_id) == ("succeeded", {"who": "new"}, "new")
    assert events(db_path, 1) == ["enqueued", "claimed", "rescued", "claimed", "succeeded"]


async def test_retryable_failures_back_off_then_fail(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(1, max_attempts=3))
    delays = []
    for attempt in (1, 2, 3):
        (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
        assert claimed.attempts == attempt
        outcome = queue.failed(claimed, "boom", kind="http_500", retryable=True, policy=FAST)
        await queue.report(db, "w", [outcome])
        if outcome.status == JobStatus.PENDING:
            delays.append(outcome.run_after - outcome.finished_at)
        with SyncStore.open(db_path) as s:
            job = store.get_job(s.conn, 1)
        if attempt < 3:
            assert job.status == "pending" and job.run_after > time.time() - 1
            await _wait_runnable(db_path)
    assert len(delays) == 2 and delays[1] > delays[0] > 0
    assert job.status == "failed" and job.error == "boom" and job.error_kind == "http_500"
    assert events(db_path, 1).count("retry_scheduled") == 2


async def _wait_runnable(db_path: Path) -> None:
    with SyncStore.open(db_path) as s:
        wake = store.next_run_after(s.conn, 0)
    if wake is not None:
        import asyncio

        await asyncio.sleep(max(0.0, wake - time.time()) + 0.001)


async def test_permanent_failure_skips_retries(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(1, max_attempts=5))
    (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
    await queue.report(
        db, "w", [queue.failed(claimed, "400", kind="http_400", retryable=False, policy=FAST)]
    )
    with SyncStore.open(db_path) as s:
        assert store.get_job(s.conn, 1).status == "failed"


async def test_retry_after_is_honoured(db: Store) -> None:
    await queue.enqueue(db, "q", jobs(1))
    (claimed,) = await queue.claim(db, "w", 1, lease_seconds=30)
    outcome = queue.failed(
        claimed, "429", kind="http_429", retryable=True, policy=FAST, retry_after=7
    )
    assert outcome.run_after - outcome.finished_at >= 7


async def test_cancel_pending_now_and_running_through_heartbeat(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(2))
    (running,) = await queue.claim(db, "w", 1, lease_seconds=30)
    now_count, flagged = await queue.cancel(db, JobFilter(queues=("q",)))
    assert (now_count, flagged) == (1, 1)
    with SyncStore.open(db_path) as s:
        assert store.get_job(s.conn, 2).status == "cancelled"
        abort = s.write(
            lambda c: store.heartbeat(
                c, "w", "busy", [(running.job_id, running.token)], 0, 0, 30, time.time()
            )
        )
    assert abort == [running.job_id]
    await queue.report(db, "w", [queue.cancelled(running)])
    with SyncStore.open(db_path) as s:
        assert store.get_job(s.conn, 1).status == "cancelled"


async def test_retry_brings_failed_and_cancelled_back(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(2, max_attempts=1))
    claimed = await queue.claim(db, "w", 2, lease_seconds=30)
    await queue.report(
        db, "w", [queue.failed(c, "x", kind="e", retryable=True, policy=FAST) for c in claimed]
    )
    assert counts(db_path) == {("q", "failed"): 2}
    assert await queue.retry(db, JobFilter(statuses=("failed",))) == 2
    with SyncStore.open(db_path) as s:
        job = store.get_job(s.conn, 1)
    assert (job.status, job.attempts) == ("pending", 0)
    assert counts(db_path) == {("q", "pending"): 2}


async def test_unknown_ids_are_refused_before_any_change(db: Store) -> None:
    await queue.enqueue(db, "q", jobs(1))
    with pytest.raises(NotFoundError, match="unknown job id 99"):
        await queue.cancel(db, JobFilter(ids=(1, 99)))


async def test_rescue_counts_the_lost_attempt(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "q", jobs(1, "a", max_attempts=2))
    await queue.enqueue(db, "q", jobs(1, "b", max_attempts=1))
    await queue.claim(db, "dead", 2, lease_seconds=-1)
    rescued, unpaused = await queue.resume(db, JobFilter())
    assert rescued == 2 and unpaused == []
    with SyncStore.open(db_path) as s:
        a, b = store.get_job(s.conn, 1), store.get_job(s.conn, 2)
    assert (a.status, a.attempts, a.error_kind) == ("pending", 1, "lease_expired")
    assert (b.status, b.attempts) == ("failed", 1)


async def test_claims_never_overlap_under_concurrency(db_path: Path) -> None:
    import asyncio

    setup = await Store.open(db_path)
    await queue.enqueue(setup, "q", jobs(500))
    await setup.close()
    stores = [await Store.open(db_path) for _ in range(4)]

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
    assert counts(db_path) == {("q", "succeeded"): 500}


async def test_counts_table_matches_a_full_count(db: Store, db_path: Path) -> None:
    await queue.enqueue(db, "a", jobs(20))
    await queue.enqueue(db, "b", jobs(10))
    claimed = await queue.claim(db, "w", 15, lease_seconds=30)
    await queue.report(db, "w", [queue.succeeded(c, None) for c in claimed[:10]])
    await queue.cancel(db, JobFilter(queues=("b",)))
    with SyncStore.open(db_path) as s:
        truth = {
            (r[0], r[1]): r[2]
            for r in s.conn.execute("SELECT queue, status, count(*) FROM jobs GROUP BY 1, 2")
        }
        for (q, st), n in truth.items():
            assert store.count_jobs(s.conn, JobFilter(statuses=(st,), queues=(q,))) == n
    assert counts(db_path) == truth
    assert JobStatus.SUCCEEDED in {st for _, st in truth}
