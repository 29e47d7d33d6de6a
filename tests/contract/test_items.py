"""The batch-items repository on every back end: lines and their jobs, streamed uploads and
results, idempotent ingestion (also by two pollers at once), and resubmission."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from batchdash.core.batch_records import ErrorMatch, ItemResult, NewBatch
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.models import JobFilter
from tests.contract.backends import Backend, counts

QUEUE = "q"


def record(s: SyncStore, n: int, prefix: str = "c", state: str = "running") -> int:
    """A batch of `n` lines (custom ids and job keys prefix0…), with its enqueued events."""
    lines = [(i + 1, f"{prefix}{i}", f"{prefix}{i}", f'{{"i": {i}}}') for i in range(n)]

    def write(tx: Tx) -> int:
        new = NewBatch(QUEUE, "/v1/chat/completions", "m", remote_id=f"b-{prefix}", state=state)
        batch_id = tx.batches.add_batch(new, 1.0)
        for start in range(0, n, 1000):  # in chunks, as callers add them
            tx.items.add_batch_lines(batch_id, QUEUE, "openai", lines[start : start + 1000], 1.0)
        tx.items.batch_lines_enqueued(batch_id, 1.0)
        return batch_id

    return s.write(write)


def result(custom_id: str, ok: bool) -> tuple[ItemResult, str, str | None]:
    if ok:
        item = ItemResult(custom_id, "succeeded", 200, result_json=f'"{custom_id}"', cost=0.5)
        return item, "succeeded", None
    item = ItemResult(custom_id, "errored", 400, "invalid_request_error", "bad line", cost=0.25)
    return item, "failed", "http_400"


def job_events(s: SyncStore) -> Counter[str]:
    return Counter(e.kind for e in s.read(lambda tx: tx.events.list_events(None)) if e.job_id)


def test_lines_become_items_with_pending_jobs_and_stream_back_in_order(backend: Backend) -> None:
    with backend.open_sync() as s:
        batch_id = record(s, 2500)  # more than one page of the streaming readers
        upload = s.read(lambda tx: list(tx.items.batch_upload_rows(batch_id)))
        assert upload == [(f"c{i}", f'{{"i": {i}}}') for i in range(2500)]
        assert s.read(lambda tx: tx.items.count_batch_items(batch_id)) == 2500
        assert s.read(lambda tx: tx.items.batch_outcome_counts(batch_id)) == {"pending": 2500}
        assert counts(backend) == {(QUEUE, "pending"): 2500}
        assert job_events(s) == {"enqueued": 2500}
        assert s.read(lambda tx: tx.batches.inflight_batch_keys(QUEUE))[:2] == ["c0", "c1"]
        found = s.read(lambda tx: tx.items.existing_job_keys(QUEUE, ["c5", "nope", "c7"]))
        assert sorted(found) == ["c5", "c7"] and found["c7"] - found["c5"] == 2
        page = s.read(lambda tx: tx.items.list_batch_items(batch_id, limit=2, offset=10))
        assert [(i.custom_id, i.line_no, i.outcome) for i in page] == [
            ("c10", 11, "pending"),
            ("c11", 12, "pending"),
        ]
        lines = s.read(lambda tx: tx.items.batch_item_lines(batch_id, [3, 1, 9999]))
        assert sorted(lines) == [("c0", 1), ("c2", 3)]
        assert s.read(lambda tx: tx.items.batch_item_lines(batch_id, [])) == []


def test_a_line_whose_key_the_queue_has_points_at_that_job(backend: Backend) -> None:
    with backend.open_sync() as s:
        first = record(s, 2, prefix="k")
        second = s.write(
            lambda tx: tx.batches.add_batch(NewBatch(QUEUE, "/v1/chat/completions", "m"), 2.0)
        )
        lines = [(1, "x", "k1", '{"new": 1}'), (2, "y", "fresh", "{}"), (3, "y", "other", "{}")]
        s.write(lambda tx: tx.items.add_batch_lines(second, QUEUE, "openai", lines, 2.0))
        items = s.read(lambda tx: tx.items.list_batch_items(second))
        assert [(i.custom_id, i.line_no) for i in items] == [("x", 1), ("y", 2)]
        [old] = [
            i for i in s.read(lambda tx: tx.items.list_batch_items(first)) if i.custom_id == "k1"
        ]
        assert items[0].job_id == old.job_id
        upload = s.read(lambda tx: list(tx.items.batch_upload_rows(second)))
        assert upload == [("x", '{"i": 1}'), ("y", "{}")]  # the job keeps its first payload
        assert counts(backend) == {(QUEUE, "pending"): 4}


def test_results_are_ingested_once_and_totals_close_the_batch(backend: Backend) -> None:
    results = [result("c0", True), result("c1", False), result("c1", True)]
    with backend.open_sync() as s:
        batch_id = record(s, 3)
        s.write(lambda tx: tx.items.apply_item_results(batch_id, results, 2.0))
        s.write(lambda tx: tx.items.apply_item_results(batch_id, results, 3.0))  # a re-run
        s.write(lambda tx: tx.items.apply_item_results(batch_id, [], 3.0))
        assert s.read(lambda tx: tx.items.pending_item_ids(batch_id)) == ["c2"]
        errored = s.read(lambda tx: tx.items.list_batch_items(batch_id, outcomes=["errored"]))
        assert [(i.custom_id, i.status_code, i.error_code) for i in errored] == [
            ("c1", 400, "invalid_request_error")
        ]
        assert job_events(s) == {"enqueued": 3, "succeeded": 1, "failed": 1}
        assert s.write(lambda tx: tx.items.close_ingest(batch_id, "partial", 4.0))
        assert not s.write(lambda tx: tx.items.close_ingest(batch_id, "partial", 5.0))
        got = s.read(lambda tx: tx.batches.get_batch(batch_id))
        assert (got.state, got.total, got.completed, got.failed, got.cost) == (
            "partial",
            3,
            1,
            1,
            0.75,
        )
        assert got.ingested_at == 4.0
        rows = s.read(lambda tx: list(tx.items.batch_result_rows(batch_id)))
        assert [(r["custom_id"], r["line_no"], r["status"], r["result"]) for r in rows] == [
            ("c0", 1, "succeeded", "c0"),
            ("c1", 2, "failed", None),
            ("c2", 3, "pending", None),
        ]
        failed = s.read(lambda tx: tx.items.remote_job_batches(JobFilter(key_glob="C*")))
        assert failed == {batch_id: 1}


def ingest_at_once(backend: Backend, batch_id: int, *both: list[Any]) -> list[bool]:
    """Two pollers (own connections, own threads) ingest into one batch at the same moment;
    what each `close_ingest` answered."""
    start = threading.Barrier(len(both))
    closed: list[bool] = []

    def poller(results: list[Any]) -> None:
        with backend.open_sync() as mine:
            start.wait(timeout=10)
            mine.write(lambda tx: tx.items.apply_item_results(batch_id, results, 2.0))
            closed.append(mine.write(lambda tx: tx.items.close_ingest(batch_id, "partial", 3.0)))

    threads = [threading.Thread(target=poller, args=(results,)) for results in both]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return closed


def test_two_pollers_ingesting_the_same_results_write_them_once(backend: Backend) -> None:
    n = 300
    results = [result(f"c{i}", ok=i % 3 != 0) for i in range(n)]
    with backend.open_sync() as s:
        batch_id = record(s, n)
    assert sorted(ingest_at_once(backend, batch_id, results, results)) == [False, True]
    with backend.open_sync() as s:
        assert job_events(s) == {"enqueued": n, "succeeded": 200, "failed": 100}
        assert counts(backend) == {(QUEUE, "succeeded"): 200, (QUEUE, "failed"): 100}
        kinds = [e.kind for e in s.read(lambda tx: tx.events.batch_events(batch_id))]
        assert kinds.count("batch_ingested") == 1
        got = s.read(lambda tx: tx.batches.get_batch(batch_id))
        assert (got.completed, got.failed, got.cost) == (200, 100, 125.0)


def test_competing_results_leave_each_item_and_its_job_agreeing(backend: Backend) -> None:
    n = 300
    done = [result(f"c{i}", ok=True) for i in range(n)]
    expired = [(ItemResult(f"c{i}", "expired"), "failed", "expired") for i in range(n)]
    with backend.open_sync() as s:
        batch_id = record(s, n)
    ingest_at_once(backend, batch_id, done, expired)
    with backend.open_sync() as s:
        rows = s.read(lambda tx: list(tx.items.batch_result_rows(batch_id)))
        pairs = Counter((r["outcome"], r["status"]) for r in rows)
        assert set(pairs) <= {("succeeded", "succeeded"), ("expired", "failed")}
        assert sum(pairs.values()) == n
        assert sum(job_events(s).values()) == 2 * n  # enqueued, then one outcome each


def test_resubmission_moves_only_owned_jobs_and_leaves_permanent_errors_out(
    backend: Backend,
) -> None:
    results = [
        result("c0", True),
        result("c1", False),  # 400 invalid_request_error: permanent
        (ItemResult("c2", "errored", 500, "server_error", "boom"), "failed", "http_500"),
        (ItemResult("c3", "expired", error_code="batch_expired"), "failed", "expired"),
    ]
    permanent = ErrorMatch(status_codes=(400,), error_codes=("invalid_request_error",))
    outcomes = ["errored", "expired"]
    with backend.open_sync() as s:
        parent = record(s, 4, state="partial")
        s.write(lambda tx: tx.items.apply_item_results(parent, results, 2.0))
        s.write(lambda tx: tx.items.close_ingest(parent, "partial", 2.0))
        assert s.read(lambda tx: tx.items.resubmittable_counts(parent, outcomes, permanent)) == (
            3,
            1,
        )

        def resubmit(tx: Tx) -> tuple[int, int]:
            new = NewBatch(QUEUE, "/v1/chat/completions", "m", parent_id=parent)
            child = tx.batches.add_batch(new, 3.0)
            lines = tx.items.resubmit_items(parent, child, outcomes, 3.0, leave_out=permanent)
            return child, lines

        child, lines = s.write(resubmit)
        assert lines == 2 and s.read(lambda tx: tx.batches.get_batch(child)).total == 2
        items = s.read(lambda tx: tx.items.list_batch_items(child))
        assert [(i.custom_id, i.line_no, i.outcome) for i in items] == [
            ("c2", 1, "pending"),
            ("c3", 2, "pending"),
        ]
        upload = s.read(lambda tx: list(tx.items.batch_upload_rows(child)))
        assert upload == [("c2", '{"i": 2}'), ("c3", '{"i": 3}')]
        assert s.read(lambda tx: tx.items.resubmittable_counts(parent, outcomes, permanent)) == (
            1,
            1,
        )
        rows = s.read(lambda tx: list(tx.items.batch_result_rows(child)))
        assert [r["status"] for r in rows] == ["pending", "pending"]
        assert job_events(s)["resubmitted"] == 2
        assert counts(backend) == {
            (QUEUE, "succeeded"): 1,
            (QUEUE, "failed"): 1,
            (QUEUE, "pending"): 2,
        }

        # Everything else goes when nothing is left out; the moved jobs stay with the child.
        def again(tx: Tx) -> int:
            new = NewBatch(QUEUE, "/v1/chat/completions", "m", parent_id=parent)
            return tx.items.resubmit_items(parent, tx.batches.add_batch(new, 4.0), outcomes, 4.0)

        assert s.write(again) == 1
        assert s.read(lambda tx: tx.batches.batch_children(parent))[0] == child
