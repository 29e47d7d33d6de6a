"""PostgreSQL: one process rescues expired leases at a time; the others skip, never wait."""

from __future__ import annotations

import threading
import time

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.ports import Tx
from batchdash.core.models import ALL_JOBS, JobStatus, NewJob


def test_a_second_rescue_skips_while_one_is_running(pg_url: str) -> None:
    where = DbLocation(url=pg_url)
    inside, release = threading.Event(), threading.Event()

    def slow_rescue(tx: Tx) -> int:
        rescued = tx.jobs.rescue(ALL_JOBS, time.time())
        inside.set()
        release.wait(10)  # hold the transaction (and its lock) open
        return rescued

    with open_sync_store(where) as first, open_sync_store(where) as second:
        now = time.time()
        first.write(lambda tx: tx.queues.ensure_queue("q", now))
        first.write(
            lambda tx: tx.jobs.enqueue("q", "noop", [NewJob(key="k", payload={})], now, None)
        )
        assert first.write(lambda tx: tx.jobs.claim("w", "t", 1, 0.01, (), now))
        time.sleep(0.05)  # the lease (10 ms) has expired: the job is there to rescue
        holder = threading.Thread(target=lambda: first.write(slow_rescue))
        holder.start()
        try:
            assert inside.wait(10)
            start = time.monotonic()
            assert second.write(lambda tx: tx.jobs.rescue(ALL_JOBS, time.time())) == 0
            assert time.monotonic() - start < 1.0, "the second rescue waited for the first"
        finally:
            release.set()
            holder.join(10)
        assert first.read(lambda tx: tx.jobs.get_job(1)).status == JobStatus.PENDING
        events = first.read(lambda tx: tx.events.list_events(1))
        assert [e.kind for e in events].count("rescued") == 1
