"""What counts as a notice, read from each back end: failures in a queue at the threshold
and each doubling, queues their budget paused, stale and dead workers, batches once they
ended and were ingested."""

from __future__ import annotations

import time

from batchdash.core import budget, queue
from batchdash.core.batch_records import NewBatch
from batchdash.core.db.ports import Store
from batchdash.core.liveness import this_host
from batchdash.core.models import Outcome, Worker
from batchdash.core.notices import NoticeRules, detect
from tests.conftest import wait_until
from tests.contract.backends import Backend, jobs

RULES = NoticeRules()  # the default: 10 failed jobs


def _ids(backend: Backend, rules: NoticeRules = RULES) -> list[str]:
    with backend.open_sync() as s:
        return [n.id for n in s.read(lambda tx: detect(tx, time.time(), rules))]


def _fail(backend: Backend, queue: str, n: int) -> None:
    """`n` more jobs of `queue` fail for good."""
    with backend.open_sync() as s:
        now = time.time()
        new = jobs(n, f"{queue}-{now}-")
        s.write(lambda tx: tx.jobs.enqueue(queue, "sim", new, now, None))
        claims = s.write(lambda tx: tx.jobs.claim("w", "t", n, 60.0, (queue,), now))
        outcomes = [Outcome(c.job_id, c.token, "failed", now, error="boom") for c in claims]
        s.write(lambda tx: tx.jobs.finish("w", outcomes))


def test_failures_notify_at_the_threshold_and_each_doubling(backend: Backend) -> None:
    _fail(backend, "papers", 9)
    assert _ids(backend) == []
    _fail(backend, "more", 1)
    _fail(backend, "papers", 1)
    assert _ids(backend) == ["queue:papers:failed:10"]
    _fail(backend, "papers", 15)  # 25 failed: past 20, not yet 40
    assert _ids(backend) == ["queue:papers:failed:20"]
    assert _ids(backend, NoticeRules(failures=0)) == []  # 0: never


def test_stale_and_dead_workers_are_notices_named_by_their_last_heartbeat(
    backend: Backend,
) -> None:
    # Heartbeats are stamped by the back end's clock (the server's on PostgreSQL): a
    # tiny interval goes stale in real time.
    now = time.time()
    quiet = Worker("quiet", "elsewhere", 42, now, now, 0.02, "busy")
    gone = Worker("gone", this_host(), 2**22 + 99, now, now, 30.0, "busy")
    alive = Worker("alive", "elsewhere", 43, now, now, 30.0, "idle")
    with backend.open_sync() as s:
        for w in (quiet, gone, alive):
            s.write(lambda tx, w=w: tx.workers.register_worker(w))
    with backend.open_sync() as s:
        beats = {w.id: int(w.heartbeat_at) for w in s.read(lambda tx: tx.workers.list_workers())}
    expected = [f"worker:gone:dead:{beats['gone']}", f"worker:quiet:stale:{beats['quiet']}"]
    wait_until(lambda: sorted(_ids(backend)) == expected, timeout=10, what="stale and dead")


def test_a_batch_is_a_notice_once_it_ended_and_its_results_are_in(backend: Backend) -> None:
    with backend.open_sync() as s:
        now = time.time()
        new = NewBatch(queue="q", endpoint="/v1/chat/completions", model=None)
        batch_id = s.write(lambda tx: tx.batches.add_batch(new, now))
        s.write(lambda tx: tx.batches.update_batch(batch_id, {"state": "running"}, now))
    assert _ids(backend) == []
    with backend.open_sync() as s:
        s.write(lambda tx: tx.batches.update_batch(batch_id, {"state": "expired"}, now))
    assert _ids(backend) == []  # not until its lines are settled
    with backend.open_sync() as s:
        s.write(lambda tx: tx.items.close_ingest(batch_id, "expired", now))
    assert _ids(backend) == [f"batch:{batch_id}:expired"]


def test_batch_endings_are_read_from_since_on(backend: Backend) -> None:
    with backend.open_sync() as s:
        new = NewBatch(queue="q", endpoint="/v1/chat/completions", model=None)
        old, recent = (s.write(lambda tx: tx.batches.add_batch(new, 1.0)) for _ in range(2))
        s.write(lambda tx: tx.batches.update_batch(old, {"state": "failed"}, 100.0))
        s.write(lambda tx: tx.items.close_ingest(old, "failed", 100.0))
        s.write(lambda tx: tx.batches.update_batch(recent, {"state": "cancelled"}, 200.0))
        s.write(lambda tx: tx.items.close_ingest(recent, "cancelled", 200.0))
        assert [b.id for b in s.read(lambda tx: tx.notices.ended_batches(150.0, 10))] == [recent]
        assert [b.id for b in s.read(lambda tx: tx.notices.ended_batches(0.0, 10))] == [
            recent,
            old,
        ]
        assert [b.id for b in s.read(lambda tx: tx.notices.ended_batches(0.0, 1))] == [recent]
        notices = s.read(lambda tx: detect(tx, 300.0, RULES, since=0.0))
    assert [(n.id, n.severity) for n in notices] == [
        (f"batch:{old}:failed", "error"),
        (f"batch:{recent}:cancelled", "warning"),
    ]


async def test_a_queue_its_budget_paused_is_a_notice_per_budget(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(3))
    claims = await queue.claim(db, "w", 1, lease_seconds=30, queues=("papers",))
    usage = queue.Usage(10, 5, 0.5)
    await queue.report(db, "w", [queue.succeeded(c, {"ok": True}, usage) for c in claims])

    async def ids() -> list[str]:
        notices = await db.read(lambda tx: detect(tx, time.time(), RULES))
        return [n.id for n in notices]

    assert await ids() == []
    await budget.set_budget(db, "papers", 0.25)
    assert await ids() == ["queue:papers:budget:0.25"]
    await budget.set_budget(db, "papers", 0.5)  # raised, and reached again at once
    assert await ids() == ["queue:papers:budget:0.5"]
    await budget.set_budget(db, "papers", None)
    assert await ids() == []
