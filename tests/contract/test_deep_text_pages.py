"""A keyset page under a free-text filter: numbered as the reader turned to it, instead of
counting every match in front of it (each is checked on its row); everything else still
says how many rows are in front, counted."""

from __future__ import annotations

import pytest

from batchdash.core.db.ports import Page, SyncStore
from batchdash.core.models import Job, JobFilter, JobStatus
from batchdash.core.snapshot import JobPage, job_page
from tests.contract.backends import Backend, jobs

DOCS = JobFilter(text="DOC")


@pytest.fixture
def store(backend: Backend) -> SyncStore:
    """250 jobs keyed doc-…, then 50 others (all pending)."""
    opened = backend.open_sync()
    opened.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(250, "doc-"), 1.0, None))
    opened.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(50, "other-"), 1.0, None))
    return opened


def read_page(store: SyncStore, flt: JobFilter, after: Job, number: int | None) -> JobPage:
    """The page after `after`, newest first, 100 rows, its number as turned to."""
    return store.read(lambda tx: job_page(tx, flt, page=Page(after), number=number))


def newest(store: SyncStore, flt: JobFilter, count: int) -> list[Job]:
    return store.read(lambda tx: tx.jobs.list_jobs(flt, limit=count, order="-id"))


def test_a_numbered_text_filtered_page_counts_nothing_in_front(store: SyncStore) -> None:
    first_two = newest(store, DOCS, 200)
    page = read_page(store, DOCS, first_two[-1], number=3)
    assert [j.id for j in page.rows] == list(range(50, 0, -1))
    assert (page.number, page.page_number, page.offset_exact) == (3, 3, False)
    assert (page.matching, page.exact) == (250, True)
    assert not page.at_start and page.at_end  # 50 rows: the last page


def test_an_unnumbered_text_filtered_page_counts_its_rows_in_front(store: SyncStore) -> None:
    first_two = newest(store, DOCS, 200)
    page = read_page(store, DOCS, first_two[-1], number=None)
    assert (page.offset, page.offset_exact, page.number, page.page_number) == (200, True, None, 3)


def test_without_text_a_numbered_page_still_counts_rows_in_front(store: SyncStore) -> None:
    pending = JobFilter(statuses=(JobStatus.PENDING,))
    first = newest(store, pending, 100)
    page = read_page(store, pending, first[-1], number=2)
    assert (page.offset, page.offset_exact, page.number) == (100, True, None)
    assert [j.id for j in page.rows] == list(range(200, 100, -1))


def test_a_page_whose_rows_went_away_is_counted_not_numbered(store: SyncStore) -> None:
    [last] = store.read(lambda tx: tx.jobs.list_jobs(DOCS, limit=1, order="id"))
    page = read_page(store, DOCS, last, number=4)  # nothing after the oldest match
    assert [j.id for j in page.rows] == list(range(101, 1, -1))  # the rows before it
    assert (page.number, page.offset, page.offset_exact) == (None, 149, True)
