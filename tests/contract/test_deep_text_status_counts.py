"""A status with a free-text (or key) filter: the same capped counts and pages whether the
text goes with the status (timeouts on failed jobs), against it, or nowhere.

PostgreSQL walks the status's jobs and tests each one's texts while few walked rows find
enough; past that budget (four walked rows per row wanted, all of them when they are at
most twice that) it leaves the read to the planner's join. The caps and limits here cross
that budget both ways.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchdash.core.db.ports import Page, SyncStore, Tx
from batchdash.core.models import JobFilter, JobStatus, Outcome
from tests.contract.backends import Backend, jobs

FAILED = (JobStatus.FAILED,)
SUCCEEDED = (JobStatus.SUCCEEDED,)
PENDING = (JobStatus.PENDING,)


@pytest.fixture
def store(backend: Backend) -> Iterator[SyncStore]:
    """Jobs 1-40 failed with a timeout, 41-100 succeeded, then 60 pending ones, three of
    them (ids 110, 130, 150) keyed after a timeout."""
    with backend.open_sync() as opened:
        opened.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(100, "doc-"), 1.0, None))
        keys = jobs(60, "job-")
        for i in (9, 29, 49):
            keys[i] = jobs(1, f"job-Timeout-{i}-")[0]
        opened.write(lambda tx: tx.jobs.enqueue("q", "noop", keys, 1.0, None))
        claims = opened.write(lambda tx: tx.jobs.claim("w", "t", 100, 60.0, (), 2.0))
        outcomes = [
            Outcome(c.job_id, "t", "failed", 3.0, error="HTTP 504: TIMEOUT after 60s")
            if c.job_id <= 40
            else Outcome(c.job_id, "t", "succeeded", 3.0, result_json="{}")
            for c in claims
        ]
        opened.write(lambda tx: tx.jobs.finish("w", outcomes))
        yield opened


def count(store: SyncStore, flt: JobFilter, cap: int) -> tuple[int, bool]:
    return store.read(lambda tx: tx.jobs.count_jobs_upto(flt, cap))


def page_ids(
    store: SyncStore, flt: JobFilter, limit: int, after: int | None = None, offset: int = 0
) -> list[int]:
    """The ids of a page newest first: from `offset`, or after job `after`."""

    def read(tx: Tx) -> list[int]:
        page = None if after is None else Page(tx.jobs.get_job(after))
        rows = tx.jobs.list_jobs(flt, limit, offset, order="-id", with_bodies=False, page=page)
        return [job.id for job in rows]

    return store.read(read)


def test_a_status_whose_jobs_match_is_counted_up_to_the_cap(store: SyncStore) -> None:
    timeouts = JobFilter(statuses=FAILED, text="timeout")
    assert count(store, timeouts, 10) == (10, False)
    assert count(store, timeouts, 100) == (40, True)
    assert count(store, JobFilter(statuses=FAILED, text="504: time"), 39) == (39, False)


def test_a_status_whose_jobs_do_not_match_counts_the_few_that_do(store: SyncStore) -> None:
    # 60 succeeded and 60 pending jobs: all walked for 11 rows, too many for 3.
    assert count(store, JobFilter(statuses=SUCCEEDED, text="timeout"), 10) == (0, True)
    assert count(store, JobFilter(statuses=SUCCEEDED, text="timeout"), 2) == (0, True)
    assert count(store, JobFilter(statuses=PENDING, text="timeout"), 10) == (3, True)
    assert count(store, JobFilter(statuses=PENDING, key_glob="job-timeout-*"), 2) == (2, False)
    both = JobFilter(statuses=(*FAILED, *PENDING), queues=("q",), text="TimeOut")
    assert count(store, both, 100) == (43, True)


def test_rows_in_front_of_a_page_are_counted_the_same(store: SyncStore) -> None:
    timeouts = JobFilter(statuses=FAILED, text="timeout")
    [top] = store.read(lambda tx: tx.jobs.list_jobs(timeouts, 1, offset=25, order="-id"))
    ahead = store.read(lambda tx: tx.jobs.count_jobs_upto(timeouts, 100, ahead_of=top, order="-id"))
    assert (top.id, ahead) == (15, (25, True))


def test_pages_of_a_status_and_a_text_hold_the_matching_jobs_in_order(store: SyncStore) -> None:
    timeouts = JobFilter(statuses=FAILED, text="timeout")
    assert page_ids(store, timeouts, 10) == list(range(40, 30, -1))
    assert page_ids(store, timeouts, 10, after=31) == list(range(30, 20, -1))
    assert page_ids(store, timeouts, 10, after=3) == [2, 1]
    assert page_ids(store, timeouts, 10, offset=25) == list(range(15, 5, -1))
    pending = JobFilter(statuses=PENDING, text="timeout")
    assert page_ids(store, pending, 10) == [150, 130, 110]
    assert page_ids(store, pending, 2, after=150) == [130, 110]
    assert page_ids(store, pending, 10, offset=1) == [130, 110]
    assert page_ids(store, JobFilter(statuses=SUCCEEDED, text="timeout"), 10) == []
