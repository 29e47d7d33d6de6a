"""Job, queue and event reads the queue tests do not reach, on every back end: cut texts,
capped counts, streamed lists, id checks, QA rubrics, and paging the event timeline."""

from __future__ import annotations

import pytest

from batchdash.core.db.ports import Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.models import JobFilter, NewJob
from batchdash.core.snapshot import job_page
from tests.contract.backends import Backend, jobs


def _filled(backend: Backend) -> None:
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(5, "Key"), 1.0, None))
        s.write(
            lambda tx: tx.jobs.enqueue("q", "noop", [NewJob("big", {"t": "é" * 50})], 1.0, None)
        )


def test_a_job_head_cuts_long_texts_and_says_their_size(backend: Backend) -> None:
    _filled(backend)
    with backend.open_sync() as s:
        job, cut = s.read(lambda tx: tx.jobs.get_job_head(6, 10))
        small, none_cut = s.read(lambda tx: tx.jobs.get_job_head(1, 100))
    assert job.payload == '{"t":"éééé' and cut == {"payload": len('{"t":""}') + 100}
    assert small.payload == {"i": 0} and none_cut == {}


def test_counts_stop_at_the_cap_and_key_filters_ignore_case(backend: Backend) -> None:
    _filled(backend)
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.jobs.count_jobs_upto(JobFilter(key_glob="key*"), 3)) == (
            3,
            False,
        )
        assert s.read(lambda tx: tx.jobs.count_jobs_upto(JobFilter(text="KEY"), 10)) == (5, True)
        assert s.read(lambda tx: tx.jobs.count_jobs_upto(JobFilter(queues=("q",)), 2)) == (6, True)
        streamed = [j.key for j in s.read(lambda tx: list(tx.jobs.iter_jobs(order="-id")))]
    assert streamed == ["big", "Key4", "Key3", "Key2", "Key1", "Key0"]


def test_a_text_filter_page_counts_to_a_thousand_others_to_ten_thousand(
    backend: Backend,
) -> None:
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(1_002, "doc-"), 1.0, None))
        texts = s.read(lambda tx: job_page(tx, JobFilter(text="DOC"), limit=10))
        globbed = s.read(lambda tx: job_page(tx, JobFilter(key_glob="doc-*"), limit=10))
        fewer = s.read(lambda tx: job_page(tx, JobFilter(text="doc-99"), limit=10))
    assert (texts.matching_text, len(texts.rows), texts.total) == ("1,000+", 10, 1_002)
    assert globbed.matching_text == "1,002"
    assert fewer.matching_text == "11"  # doc-99 and doc-990…doc-999


def test_job_ids_are_checked_in_the_order_given(backend: Backend) -> None:
    _filled(backend)
    with backend.open_sync() as s:
        assert s.read(lambda tx: tx.jobs.existing_job_ids([2, 77, 6])) == {2, 6}
        with pytest.raises(NotFoundError, match="unknown job id 77"):
            s.read(lambda tx: tx.jobs.require_jobs([1, 77, 88]))


def test_a_queue_rubric_is_set_read_and_reset(backend: Backend) -> None:
    _filled(backend)

    def rubric(tx: Tx, value: str | None) -> str | None:
        tx.queues.set_qa_rubric("q", value)
        return tx.queues.get_qa_rubric("q")

    with backend.open_sync() as s:
        assert s.write(lambda tx: rubric(tx, '{"dims": ["tone"]}')) == '{"dims": ["tone"]}'
        assert s.write(lambda tx: rubric(tx, None)) is None
        with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
            s.read(lambda tx: tx.queues.get_qa_rubric("nope"))


def test_the_timeline_pages_after_an_event_id(backend: Backend) -> None:
    _filled(backend)
    with backend.open_sync() as s:
        s.write(lambda tx: tx.queues.set_paused("q", True, 2.0))
        everything = s.read(lambda tx: tx.events.list_events(None))
        page = s.read(lambda tx: tx.events.list_events(None, after_id=everything[1].id, limit=2))
    assert [e.kind for e in everything] == ["enqueued"] * 6 + ["paused"]
    assert [e.id for e in page] == [everything[2].id, everything[3].id]
