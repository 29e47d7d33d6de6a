"""Job pages: whichever plan the store picks (a walk of ids, a merge of per-status index
runs, or the planner's own), a page holds exactly the rows a full sort would put there."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from batchdash.core.db.ports import Page, SyncStore, Tx
from batchdash.core.db.sqlite.job_pages import _ORDER_WALKS
from batchdash.core.models import Job, JobFilter, NewJob, Outcome
from tests.contract.backends import Backend

#: Weighted like a real queue: mostly succeeded, some failed, retried, cancelled or running.
OUTCOMES = ("succeeded",) * 6 + ("failed", "cancelled", "running", "pending")


@pytest.fixture(scope="module")
def db(module_backend: Backend) -> SyncStore:
    """600 jobs in 3 queues with many updated_at ties and up to three attempts each."""
    opened = module_backend.open_sync()
    rng = random.Random(7)
    for queue in ("a", "b", "c"):
        jobs = [NewJob(key=f"{queue}{i}", payload={}) for i in range(200)]
        opened.write(lambda c, q=queue, j=jobs: c.jobs.enqueue(q, "noop", j, 1000.0, None))
    for attempt in range(3):  # "pending" outcomes are retries: claimed again next round
        claims = opened.write(lambda c: c.jobs.claim("w", "t", 600, 60.0, (), 2000.0))
        outcomes = []
        for claim in claims:
            status = rng.choice(OUTCOMES)
            if status == "running":
                continue  # its claim stays open
            at = float(rng.randrange(3000, 3050))  # few distinct times: ties broken by id
            outcomes.append(Outcome(claim.job_id, "t", status, at + attempt, error_kind="x"))
        opened.write(lambda c, o=outcomes: c.jobs.finish("w", o))
    opened.write(lambda c: c.jobs.enqueue("a", "noop", [NewJob("late", {})], 4000.0, None))
    return opened


#: Every order a job page may be asked for, and the full sort it must agree with.
SORT_KEYS: dict[str, Callable[[Job], Any]] = {
    "id": lambda j: j.id,
    "-id": lambda j: -j.id,
    "updated": lambda j: (j.updated_at, j.id),
    "-updated": lambda j: (-j.updated_at, -j.id),
    "key": lambda j: (j.queue, j.key),
    "status": lambda j: (j.status, j.updated_at, j.id),
    "attempts": lambda j: (-j.attempts, j.id),
}


def expected(jobs: list[Job], order: str) -> list[int]:
    return [j.id for j in sorted(jobs, key=SORT_KEYS[order])]


FILTERS = [
    JobFilter(),
    JobFilter(statuses=("failed",)),
    JobFilter(statuses=("succeeded",)),
    JobFilter(statuses=("running", "failed")),
    JobFilter(statuses=("pending",)),
    JobFilter(queues=("b",)),
    JobFilter(statuses=("succeeded",), queues=("a", "c")),
    JobFilter(key_glob="a1*"),
    # A status with a text: PostgreSQL walks the status's jobs (text_walk), in every order.
    JobFilter(statuses=("succeeded",), text="1"),
    JobFilter(statuses=("failed", "pending"), key_glob="*2*"),
]


def test_the_fixture_has_every_attempt_count(db: SyncStore) -> None:
    assert {j.attempts for j in db.read(lambda tx: tx.jobs.list_jobs())} == {0, 1, 2, 3}


@pytest.mark.parametrize("order", list(_ORDER_WALKS))
def test_both_plans_of_walkable_orders_are_covered(
    module_backend: Backend, db: SyncStore, order: str
) -> None:
    """SQLite's own plans: a walk of ids for common statuses, the planner for rare ones."""
    if module_backend.name != "sqlite":
        pytest.skip("query plans of the SQLite back end")
    common, rare = JobFilter(statuses=("succeeded",)), JobFilter(statuses=("running",))
    assert db.read(lambda tx: tx.jobs._walk_order(common, 10, 0, order))
    assert not db.read(lambda tx: tx.jobs._walk_order(rare, 10, 0, order))


def _page(tx: Tx, flt: JobFilter, offset: int, order: str) -> list[Job]:
    return tx.jobs.list_jobs(flt, limit=10, offset=offset, order=order)


@pytest.mark.parametrize("order", list(SORT_KEYS))
@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_every_page_matches_a_full_sort(db: SyncStore, flt: JobFilter, order: str) -> None:
    everything = expected(db.read(lambda tx: tx.jobs.list_jobs(flt)), order)
    assert everything, "the filter should match something"
    for offset in (0, 7, 50, len(everything) - 3, len(everything) + 5):
        page = db.read(partial(_page, flt=flt, offset=offset, order=order))
        assert [j.id for j in page] == everything[offset : offset + 10], (offset, order)


def test_bodies_come_with_merged_pages(db: SyncStore) -> None:
    [job] = db.read(
        lambda tx: tx.jobs.list_jobs(JobFilter(statuses=("failed",)), limit=1, order="-updated")
    )
    assert job.payload == {}
    [light] = db.read(
        lambda tx: tx.jobs.list_jobs(
            JobFilter(statuses=("failed",)), limit=1, order="-updated", with_bodies=False
        )
    )
    assert light.payload is None and light.id == job.id


def _walk(db: SyncStore, flt: JobFilter, order: str, before: bool) -> list[int]:
    """Every matching id, page by page through keyset anchors (from the end, `before`)."""
    everything = db.read(lambda tx: tx.jobs.list_jobs(flt, order=order))
    start = everything[-1] if before else everything[0]
    seen = [start.id]
    page = Page(start, before)
    while rows := db.read(
        lambda tx, p=page: tx.jobs.list_jobs(flt, limit=7, order=order, with_bodies=False, page=p)
    ):
        assert len(rows) <= 7
        seen = [j.id for j in rows] + seen if before else seen + [j.id for j in rows]
        page = Page(rows[0] if before else rows[-1], before)
    return seen


@pytest.mark.parametrize("before", [False, True], ids=["next", "previous"])
@pytest.mark.parametrize("order", list(SORT_KEYS))
@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_keyset_pages_walk_the_full_sort_both_ways(
    db: SyncStore, flt: JobFilter, order: str, before: bool
) -> None:
    """Pages after (or before) a row, one after the other, hold every row once, in order."""
    assert _walk(db, flt, order, before) == expected(
        db.read(lambda tx: tx.jobs.list_jobs(flt)), order
    )


@pytest.mark.parametrize("order", list(SORT_KEYS))
def test_counting_ahead_of_a_row_gives_its_position(db: SyncStore, order: str) -> None:
    flt = JobFilter(statuses=("succeeded", "failed"))
    everything = db.read(lambda tx: tx.jobs.list_jobs(flt, order=order))
    for position in (0, 1, 33, len(everything) - 1):
        job = everything[position]
        assert db.read(
            lambda tx, j=job: tx.jobs.count_jobs_upto(flt, 1000, ahead_of=j, order=order)
        ) == (position, True)
    capped = db.read(
        lambda tx: tx.jobs.count_jobs_upto(flt, 20, ahead_of=everything[-1], order=order)
    )
    assert capped == (20, False)
