"""Job pages: whichever plan the store picks (a walk of ids, a merge of per-status index
runs, or the planner's own), a page holds exactly the rows a full sort would put there."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from batchdash.core import store
from batchdash.core.models import Job, JobFilter, NewJob
from batchdash.core.store import Outcome, SyncStore

#: Weighted like a real queue: mostly succeeded, some failed, retried, cancelled or running.
OUTCOMES = ("succeeded",) * 6 + ("failed", "cancelled", "running", "pending")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> SyncStore:
    """600 jobs in 3 queues with many updated_at ties and up to three attempts each."""
    opened = SyncStore.open(Path(tmp_path_factory.mktemp("pages")) / "pages.db")
    rng = random.Random(7)
    for queue in ("a", "b", "c"):
        jobs = [NewJob(key=f"{queue}{i}", payload={}) for i in range(200)]
        opened.write(lambda c, q=queue, j=jobs: store.enqueue(c, q, "noop", j, 1000.0, None))
    for attempt in range(3):  # "pending" outcomes are retries: claimed again next round
        claims = opened.write(lambda c: store.claim(c, "w", "t", 600, 60.0, (), 2000.0))
        outcomes = []
        for claim in claims:
            status = rng.choice(OUTCOMES)
            if status == "running":
                continue  # its claim stays open
            at = float(rng.randrange(3000, 3050))  # few distinct times: ties broken by id
            outcomes.append(Outcome(claim.job_id, "t", status, at + attempt, error_kind="x"))
        opened.write(lambda c, o=outcomes: store.finish(c, "w", o))
    opened.write(lambda c: store.enqueue(c, "a", "noop", [NewJob("late", {})], 4000.0, None))
    return opened


def expected(jobs: list[Job], order: str) -> list[int]:
    keys = {
        "id": lambda j: j.id,
        "-id": lambda j: -j.id,
        "updated": lambda j: (j.updated_at, j.id),
        "-updated": lambda j: (-j.updated_at, -j.id),
        "key": lambda j: (j.queue, j.key),
        "status": lambda j: (j.status, j.updated_at, j.id),
        "attempts": lambda j: (-j.attempts, j.id),
    }
    return [j.id for j in sorted(jobs, key=keys[order])]


FILTERS = [
    JobFilter(),
    JobFilter(statuses=("failed",)),
    JobFilter(statuses=("succeeded",)),
    JobFilter(statuses=("running", "failed")),
    JobFilter(statuses=("pending",)),
    JobFilter(queues=("b",)),
    JobFilter(statuses=("succeeded",), queues=("a", "c")),
    JobFilter(key_glob="a1*"),
]


def test_the_fixture_has_every_attempt_count(db: SyncStore) -> None:
    assert {j.attempts for j in store.list_jobs(db.conn)} == {0, 1, 2, 3}


@pytest.mark.parametrize("order", list(store._ORDER_WALKS))
def test_both_plans_of_walkable_orders_are_covered(db: SyncStore, order: str) -> None:
    common, rare = JobFilter(statuses=("succeeded",)), JobFilter(statuses=("running",))
    assert store._walk_order(db.conn, common, 10, 0, order)
    assert not store._walk_order(db.conn, rare, 10, 0, order)


@pytest.mark.parametrize("order", list(store._ORDERS))
@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_every_page_matches_a_full_sort(db: SyncStore, flt: JobFilter, order: str) -> None:
    everything = expected(store.list_jobs(db.conn, flt), order)
    assert everything, "the filter should match something"
    for offset in (0, 7, 50, len(everything) - 3, len(everything) + 5):
        page = store.list_jobs(db.conn, flt, limit=10, offset=offset, order=order)
        assert [j.id for j in page] == everything[offset : offset + 10], (offset, order)


def test_bodies_come_with_merged_pages(db: SyncStore) -> None:
    [job] = store.list_jobs(db.conn, JobFilter(statuses=("failed",)), limit=1, order="-updated")
    assert job.payload == {}
    [light] = store.list_jobs(
        db.conn, JobFilter(statuses=("failed",)), limit=1, order="-updated", with_bodies=False
    )
    assert light.payload is None and light.id == job.id
