"""Live updates on PostgreSQL: waits end when ANOTHER process writes, and an idle worker
picks up new work at once instead of after its poll interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from batchdash.core import queue
from batchdash.core.db import DbLocation, open_store, open_sync_store
from batchdash.core.models import JobStatus, NewJob
from tests.conftest import spawn, wait_until


async def test_a_write_elsewhere_ends_a_change_wait_and_our_own_does_not(pg_url: str) -> None:
    where = DbLocation(url=pg_url)
    watcher, writer = await open_store(where), await open_store(where)
    try:
        await watcher.write(lambda tx: tx.queues.ensure_queue("mine", time.time()))
        assert not await watcher.wait_for_change(0.3), "woke on its own write"
        waiting = asyncio.create_task(watcher.wait_for_change(10.0))
        await asyncio.sleep(0.2)  # the listener is connected and waiting
        start = time.monotonic()
        await writer.write(lambda tx: tx.queues.ensure_queue("theirs", time.time()))
        assert await waiting
        assert time.monotonic() - start < 2.0
    finally:
        await watcher.close()
        await writer.close()


async def test_the_last_write_of_a_burst_still_ends_a_change_wait(pg_url: str) -> None:
    """Busy writers notify at most once per gap; what they wrote after it is announced by
    a trailing notification, so a dashboard never misses the end of a burst."""
    where = DbLocation(url=pg_url)
    watcher, writer = await open_store(where), await open_store(where)
    try:
        first = asyncio.create_task(watcher.wait_for_change(10.0))
        await asyncio.sleep(0.2)  # the listener is connected and waiting
        for name in ("a", "b", "c"):  # one burst: the first notifies at once
            await writer.write(lambda tx, name=name: tx.queues.ensure_queue(name, time.time()))
        assert await first
        assert await watcher.wait_for_change(5.0), "the burst's later writes were announced"
    finally:
        await watcher.close()
        await writer.close()


async def test_work_waits_wake_on_new_jobs_only(pg_url: str) -> None:
    where = DbLocation(url=pg_url)
    worker, other = await open_store(where), await open_store(where)
    try:
        await queue.enqueue(other, "q", [NewJob(key="first", payload={})], handler="noop")
        quiet = asyncio.create_task(worker.wait_for_work(0.5))
        await asyncio.sleep(0.1)
        await other.write(lambda tx: tx.queues.set_paused("q", True, time.time()))
        assert not await quiet, "pausing a queue is not new work"
        waiting = asyncio.create_task(worker.wait_for_work(10.0))
        await asyncio.sleep(0.1)
        await other.write(lambda tx: tx.queues.set_paused("q", False, time.time()))
        assert await waiting, "resuming a queue makes its jobs claimable"
        waiting = asyncio.create_task(worker.wait_for_work(10.0))
        await asyncio.sleep(0.1)
        await queue.enqueue(other, "q", [NewJob(key="second", payload={})], handler="noop")
        assert await waiting
    finally:
        await worker.close()
        await other.close()


def test_an_idle_worker_starts_new_work_well_before_its_poll_interval(
    pg_url: str, tmp_path: Path
) -> None:
    """With --poll 5, a job enqueued while the worker idles starts within a second."""
    where = DbLocation(url=pg_url)
    worker = spawn("worker", "--poll", "5", "--heartbeat", "0.5", BATCHDASH_DB=pg_url)
    try:
        with open_sync_store(where) as s:
            wait_until(lambda: s.read(lambda tx: tx.workers.list_workers()), 30, what="worker")
        time.sleep(1.0)  # let its idle back-off grow to the full poll interval
        asyncio.run(_enqueue_one(where))
        with open_sync_store(where) as s:
            wait_until(
                lambda: s.read(lambda tx: tx.jobs.list_jobs())[0].status == JobStatus.SUCCEEDED,
                10,
                what="the job to run",
            )
            job = s.read(lambda tx: tx.jobs.list_jobs())[0]
        assert job.started_at is not None
        assert job.started_at - job.created_at < 1.5, "woke by notification, not by polling"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def _enqueue_one(where: DbLocation) -> None:
    db = await open_store(where)
    try:
        await queue.enqueue(db, "q", [NewJob(key="late", payload={})], handler="noop")
    finally:
        await db.close()
