"""The workers repository's contract on every back end: registration, heartbeats that extend
leases and pass on cancels and stop requests, release, states, staleness and the listing.

Staleness and leases run on the back end's clock (the server's, on PostgreSQL), so these
tests use real time with tiny intervals rather than fake `now` values.
"""

from __future__ import annotations

import time

from batchdash.core import queue
from batchdash.core.db.ports import Store
from batchdash.core.models import Claim, JobFilter, Worker
from tests.conftest import wait_until
from tests.contract.backends import Backend, events, jobs


def _worker(worker_id: str, host: str = "host-a", interval: float = 30.0) -> Worker:
    now = time.time()
    return Worker(worker_id, host, 42, now, now, interval, "idle", queues=["q"], concurrency=3)


def _register(backend: Backend, *workers: Worker) -> None:
    with backend.open_sync() as s:
        for worker in workers:
            s.write(lambda tx, w=worker: tx.workers.register_worker(w))


def _listed(backend: Backend) -> dict[str, Worker]:
    with backend.open_sync() as s:
        return {w.id: w for w in s.read(lambda tx: tx.workers.list_workers())}


def test_registered_workers_are_listed_latest_heartbeat_first(backend: Backend) -> None:
    _register(backend, _worker("w1", "host-a"), _worker("w2", "host-b"))
    with backend.open_sync() as s:
        s.write(lambda tx: tx.workers.heartbeat("w1", "busy", [], 3, 1, 30.0, time.time()))
        listed = s.read(lambda tx: tx.workers.list_workers())
    assert [w.id for w in listed] == ["w1", "w2"]
    first = listed[0]
    assert (first.host, first.pid, first.queues, first.concurrency) == ("host-a", 42, ["q"], 3)
    assert (first.state, first.done, first.failed) == ("busy", 3, 1)
    assert listed[1].host == "host-b"


def test_a_heartbeat_clears_the_note(backend: Backend) -> None:
    _register(backend, _worker("w1"))
    with backend.open_sync() as s:
        s.write(lambda tx: tx.workers.set_worker_note("w1", "loop blocked 2s"))
        assert _listed(backend)["w1"].note == "loop blocked 2s"
        s.write(lambda tx: tx.workers.heartbeat("w1", "idle", [], 0, 0, 30.0, time.time()))
    assert _listed(backend)["w1"].note is None


def test_a_silent_worker_goes_stale(backend: Backend) -> None:
    _register(backend, _worker("quiet", interval=0.05), _worker("alive", interval=30.0))
    with backend.open_sync() as s:

        def stale() -> list[str]:
            return s.write(lambda tx: tx.workers.mark_stale_workers(3.0, time.time()))

        wait_until(lambda: stale() == ["quiet"], timeout=5, what="quiet marked stale")
        assert stale() == []  # already stale: not reported twice
    states = {w.id: w.state for w in _listed(backend).values()}
    assert states == {"quiet": "stale", "alive": "idle"}


def test_stopping_clears_current_jobs_and_records_the_time(backend: Backend) -> None:
    _register(backend, _worker("w1"))
    before = time.time() - 5  # the server's clock may differ a little
    with backend.open_sync() as s:
        s.write(lambda tx: tx.workers.heartbeat("w1", "busy", [(7, "t")], 0, 0, 30.0, time.time()))
        assert _listed(backend)["w1"].current_jobs == [7]
        s.write(lambda tx: tx.workers.set_worker_state("w1", "draining", time.time()))
        assert _listed(backend)["w1"].stopped_at is None
        s.write(lambda tx: tx.workers.set_worker_state("w1", "stopped", time.time()))
    stopped = _listed(backend)["w1"]
    assert (stopped.state, stopped.current_jobs) == ("stopped", [])
    assert stopped.stopped_at is not None and stopped.stopped_at > before


def test_a_stop_request_reaches_live_workers_through_their_heartbeat(backend: Backend) -> None:
    _register(backend, _worker("w1"), _worker("w2"), _worker("gone"))
    with backend.open_sync() as s:
        s.write(lambda tx: tx.workers.set_worker_state("gone", "stopped", time.time()))
        asked = s.write(lambda tx: tx.workers.request_stop(["w1", "gone", "nope"], time.time()))
        assert asked == ["w1"]

        def beat(worker_id: str) -> bool:
            reply = s.write(
                lambda tx: tx.workers.heartbeat(worker_id, "idle", [], 0, 0, 30.0, time.time())
            )
            return reply.stop

        assert (beat("w1"), beat("w2")) == (True, False)
    _register(backend, _worker("w1"))  # the id starts afresh: the old request is gone
    with backend.open_sync() as s:
        assert s.write(lambda tx: tx.workers.request_stop([], time.time())) == []
        assert beat("w1") is False


async def _three_claimed_second_cancelled(db: Store, lease: float) -> list[Claim]:
    """Three jobs claimed by worker `w`, the second of them then cancelled (still running)."""
    await queue.enqueue(db, "q", jobs(3))
    claims = await queue.claim(db, "w", 3, lease_seconds=lease)
    await queue.cancel(db, JobFilter(ids=(claims[1].job_id,)))
    return claims


async def test_a_heartbeat_extends_leases_and_aborts_cancelled_or_lost_jobs(
    db: Store, backend: Backend
) -> None:
    kept, cancelled, lost = await _three_claimed_second_cancelled(db, 0.5)
    held = [(kept.job_id, kept.token), (cancelled.job_id, cancelled.token), (lost.job_id, "x")]
    with backend.open_sync() as s:
        before = s.read(lambda tx: tx.jobs.get_job(kept.job_id)).lease_expires_at
        reply = s.write(lambda tx: tx.workers.heartbeat("w", "busy", held, 0, 0, 60.0, time.time()))
        after = s.read(lambda tx: tx.jobs.get_job(kept.job_id)).lease_expires_at
    assert sorted(reply.cancel) == sorted([cancelled.job_id, lost.job_id])
    assert reply.stop is False  # an unregistered worker was never asked to stop
    assert before is not None and after is not None and after > before + 30


async def test_release_gives_jobs_back_without_counting_the_attempt(
    db: Store, backend: Backend
) -> None:
    back, cancelled, finished = await _three_claimed_second_cancelled(db, 30)
    await queue.report(db, "w", [queue.succeeded(finished, {"ok": True})])
    held_claims = (back, cancelled, finished)
    held = [(c.job_id, c.token) for c in held_claims]
    with backend.open_sync() as s:
        assert s.write(lambda tx: tx.workers.release("w", held, time.time())) == 2
        rows = {c.job_id: s.read(lambda tx, c=c: tx.jobs.get_job(c.job_id)) for c in held_claims}
    assert (rows[back.job_id].status, rows[back.job_id].attempts) == ("pending", 0)
    assert rows[back.job_id].worker_id is None and rows[back.job_id].lease_expires_at is None
    assert rows[cancelled.job_id].status == "cancelled"
    assert rows[finished.job_id].status == "succeeded"  # not held any more: left alone
    assert events(backend, back.job_id)[-1] == "released"
