"""The audit trail on every back end: each action's events (jobs, queues, workers) name who
acted and from where (`by <user> via <origin>`); what the system does on its own, nobody."""

from __future__ import annotations

import time

from batchdash.core import queue
from batchdash.core.actor import Actor, Origin
from batchdash.core.db.ports import Store
from batchdash.core.models import Event, JobFilter
from tests.contract.backends import Backend, jobs
from tests.contract.test_worker_rows import _register, _worker

ALICE = Actor(Origin.WEB, "alice")
BOB = Actor(Origin.CLI, "bob")
CAROL = Actor(Origin.TUI, "carol")


def _events(backend: Backend) -> list[tuple[str, int | None, str | None, str | None]]:
    """(kind, job, queue, detail) of every event but the enqueues."""
    with backend.open_sync() as s:
        listed: list[Event] = s.read(lambda tx: tx.events.list_events(None))
    return [(e.kind, e.job_id, e.queue, e.detail) for e in listed if e.kind != "enqueued"]


async def test_each_action_names_its_actor(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(3, max_attempts=1))
    (running,) = await queue.claim(db, "w", 1, lease_seconds=30)
    await queue.cancel(db, JobFilter(queues=("q",)), ALICE)  # 2 and 3 now, 1 at its heartbeat
    await queue.retry(db, JobFilter(ids=(2,)), BOB)
    await queue.set_paused(db, "q", True, CAROL)
    await queue.resume(db, JobFilter(queues=("q",)), BOB)
    assert _events(backend)[1:] == [
        ("cancelled", 2, "q", "by alice via web"),
        ("cancelled", 3, "q", "by alice via web"),
        ("cancel_requested", 1, "q", "worker aborts at its next heartbeat; by alice via web"),
        ("retried", 2, "q", "by bob via cli"),
        ("paused", None, "q", "by carol via tui"),
        ("unpaused", None, "q", "by bob via cli"),
    ]
    assert running.job_id == 1


async def test_a_rescue_names_the_user_who_resumed_and_none_when_automatic(
    db: Store, backend: Backend
) -> None:
    await queue.enqueue(db, "q", jobs(2))
    await queue.claim(db, "dead", 1, lease_seconds=-1)
    assert await queue.resume(db, JobFilter(), BOB) == (1, [])
    await queue.claim(db, "dead", 1, lease_seconds=-1)  # the same job again: attempt 2
    assert await queue.rescue_expired(db) == 1
    rescued = [detail for kind, _, _, detail in _events(backend) if kind == "rescued"]
    assert rescued == [
        "lease expired after attempt 1/3; now pending; by bob via cli",
        "lease expired after attempt 2/3; now pending",
    ]


async def test_without_an_actor_the_details_stay_as_before(db: Store, backend: Backend) -> None:
    await queue.enqueue(db, "q", jobs(1))
    await queue.cancel(db, JobFilter(ids=(1,)))
    await queue.set_paused(db, "q", True)
    assert _events(backend) == [("cancelled", 1, "q", "by user"), ("paused", None, "q", None)]


def test_a_stop_request_names_who_asked_each_live_worker(backend: Backend) -> None:
    _register(backend, _worker("w1"), _worker("w2"))
    with backend.open_sync() as s:
        asked = s.write(lambda tx: tx.workers.request_stop(["w1", "nope"], time.time(), BOB))
    assert asked == ["w1"]
    with backend.open_sync() as s:
        events = s.read(lambda tx: tx.events.list_events(None))
    assert [(e.kind, e.worker_id, e.detail) for e in events] == [
        ("stop_requested", "w1", "by bob via cli")
    ]
