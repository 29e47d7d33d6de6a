"""The repositories' contract on every back end: transactions are all or nothing, unknown
names are NotFoundError, and workers, batches, batch items, QA verdicts and totals read
back what was written."""

from __future__ import annotations

import asyncio

import pytest

from batchdash.core.batch_records import ItemResult, NewBatch
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, JobFilter
from batchdash.core.qa_models import QAResult
from tests.contract.backends import Backend, jobs


def test_a_write_that_fails_half_way_changes_nothing(backend: Backend) -> None:
    def half(tx: Tx) -> None:
        tx.jobs.enqueue("q", "noop", jobs(3), 1.0, None)
        raise RuntimeError("boom")

    with backend.open_sync() as s:
        with pytest.raises(RuntimeError, match="boom"):
            s.write(half)
        assert s.read(lambda tx: tx.jobs.count_jobs(ALL_JOBS)) == 0
        assert s.read(lambda tx: tx.events.list_events(None)) == []


async def test_concurrent_calls_on_one_async_store_each_see_a_whole_transaction(
    db: Store,
) -> None:
    async def enqueue(i: int) -> tuple[int, int]:
        return await db.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(10, f"b{i}-"), 1, None))

    inserted = await asyncio.gather(*(enqueue(i) for i in range(8)))
    assert inserted == [(10, 0)] * 8
    assert await db.read(lambda tx: tx.jobs.count_jobs(ALL_JOBS)) == 80


def test_unknown_names_are_not_found(backend: Backend) -> None:
    with backend.open_sync() as s:
        with pytest.raises(NotFoundError, match="unknown job id 9"):
            s.read(lambda tx: tx.jobs.get_job(9))
        with pytest.raises(NotFoundError):
            s.read(lambda tx: tx.batches.get_batch("batch_nope"))
        with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
            s.read(lambda tx: tx.queues.require_queue("nope"))


def test_a_batch_from_intent_to_ingested_results(backend: Backend) -> None:
    lines = [(1, "c1", "k1", "{}"), (2, "c2", "k2", "{}")]

    def record(tx: Tx) -> int:
        batch_id = tx.batches.add_batch(NewBatch("remote", "/v1/chat/completions", "m"), 1.0)
        tx.items.add_batch_lines(batch_id, "remote", "openai", lines, 1.0)
        tx.items.batch_lines_enqueued(batch_id, 1.0)
        return batch_id

    results = [
        (ItemResult("c1", "succeeded", 200, result_json='{"ok": 1}'), "succeeded", None),
        (ItemResult("c2", "errored", 400, error_message="bad line"), "failed", "http_400"),
    ]
    with backend.open_sync() as s:
        batch_id = s.write(record)
        assert s.read(lambda tx: tx.items.batch_outcome_counts(batch_id)) == {"pending": 2}
        s.write(lambda tx: tx.batches.update_batch(batch_id, {"remote_id": "batch_x"}, 2.0))
        assert s.read(lambda tx: tx.batches.get_batch("batch_x")).id == batch_id
        s.write(lambda tx: tx.items.apply_item_results(batch_id, results, 3.0))
        counts = s.read(lambda tx: tx.items.batch_outcome_counts(batch_id))
        assert counts == {"succeeded": 1, "errored": 1}
        assert s.write(lambda tx: tx.items.close_ingest(batch_id, "partial", 4.0))
        assert not s.write(lambda tx: tx.items.close_ingest(batch_id, "partial", 5.0))
        done = s.read(lambda tx: tx.jobs.list_jobs(JobFilter(batch_id=batch_id)))
        assert [(j.key, j.status, j.result) for j in done] == [
            ("k1", "succeeded", {"ok": 1}),
            ("k2", "failed", None),
        ]
        assert s.read(lambda tx: tx.batches.get_batch(batch_id)).state == "partial"


def test_qa_verdicts_read_back_and_add_to_the_totals(backend: Backend) -> None:
    verdict = QAResult(1, "judge", {"overall": 7.0}, "fine", None, None, 10, 5, 0.25, 3.0)
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(2), 1.0, None))
        assert s.write(lambda tx: tx.qa.save_qa_result(verdict, replace=False))
        assert not s.write(lambda tx: tx.qa.save_qa_result(verdict, replace=False))
        [stored] = s.read(lambda tx: tx.qa.qa_results_for_job(1))
        assert (stored.judge, stored.overall, stored.cost) == ("judge", 7.0, 0.25)
        assert s.read(lambda tx: tx.qa.qa_dimensions()) == ["overall"]
        assert s.read(lambda tx: tx.stats.qa_spend()).cost == pytest.approx(0.25)
        assert s.read(lambda tx: tx.stats.status_totals()) == {"pending": 2}
