"""Housekeeping on every back end: tags and the `tag:` filter, created-time windows of jobs
and batches, and pruning finished work with every kept count staying true."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from batchdash.core import batches
from batchdash.core.batch_records import ItemResult, NewBatch
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.models import ALL_JOBS, JobFilter, NewJob, Outcome
from batchdash.core.prune import Pruned, PruneScope, prune
from batchdash.core.qa_models import QAResult
from tests.contract.backends import Backend, counts, jobs

DAY = 86400.0
NOW = time.time()
OLD = NOW - 40 * DAY


def enqueue(s: SyncStore, queue: str, new: list[NewJob], now: float = NOW) -> None:
    s.write(lambda tx: tx.jobs.enqueue(queue, "noop", new, now, None))
    s.write(lambda tx: tx.tags.tag_jobs(queue, new))


def finish(s: SyncStore, n: int, status: str, at: float, cost: float = 0.0) -> list[int]:
    """Claim `n` jobs and end them with `status` at `at` (the worker's clock)."""
    claims = s.write(lambda tx: tx.jobs.claim("w", "tok", n, 60.0, (), time.time()))
    outcomes = [
        Outcome(c.job_id, "tok", status, at, result_json='"r"', input_tokens=1, cost=cost)
        for c in claims
    ]
    s.write(lambda tx: tx.jobs.finish("w", outcomes))
    return [c.job_id for c in claims]


def keys(s: SyncStore, flt: JobFilter) -> list[str]:
    return sorted(j.key for j in s.read(lambda tx: tx.jobs.list_jobs(flt)))


def test_tags_filter_jobs(backend: Backend) -> None:
    with backend.open_sync() as s:
        new = [
            replace(j, tags=("red",) if i % 2 else ("red", "blue")) for i, j in enumerate(jobs(4))
        ]
        enqueue(s, "q", new)
        s.write(lambda tx: tx.tags.tag_jobs("q", [NewJob("k0", {}, tags=("blue", "green"))]))
        assert keys(s, JobFilter(tags=("blue",))) == ["k0", "k2"]
        assert keys(s, JobFilter(tags=("green",))) == ["k0"]
        assert keys(s, JobFilter(tags=("blue", "green"))) == ["k0", "k2"]  # any of them
        assert keys(s, JobFilter(tags=("red",), key_glob="k1*")) == ["k1"]
        assert s.read(lambda tx: tx.jobs.count_jobs(JobFilter(tags=("red",)))) == 4
        assert s.read(lambda tx: tx.jobs.count_jobs_upto(JobFilter(tags=("red",)), 2)) == (2, False)
        page = s.read(lambda tx: tx.jobs.list_jobs(JobFilter(tags=("red",)), 2, order="-updated"))
        assert len(page) == 2
        ids = [j.id for j in s.read(lambda tx: tx.jobs.list_jobs(ALL_JOBS))]
        found = s.read(lambda tx: tx.tags.job_tags(ids))
        assert found[ids[0]] == ["blue", "green", "red"] and len(found) == 4


def test_tagging_batches_tags_their_jobs(backend: Backend) -> None:
    with backend.open_sync() as s:
        batch_id = _batch(s, 3, "b")
        other = _batch(s, 1, "o")
        s.write(lambda tx: tx.tags.tag_batches([batch_id], ["nightly", "run-1"]))
        s.write(lambda tx: tx.tags.tag_batches([batch_id], ["nightly"]))  # again: once
        assert keys(s, JobFilter(tags=("nightly",))) == ["b0", "b1", "b2"]
        assert s.read(lambda tx: tx.tags.batch_tags([batch_id, other])) == {
            batch_id: ["nightly", "run-1"]
        }


def test_since_and_until_bound_the_creation_time_of_jobs_and_batches(backend: Backend) -> None:
    with backend.open_sync() as s:
        enqueue(s, "q", jobs(2, "old"), now=NOW - 3 * DAY)
        enqueue(s, "q", jobs(2, "new"), now=NOW)
        since = JobFilter(created_after=NOW - DAY)
        assert keys(s, since) == ["new0", "new1"]
        assert keys(s, JobFilter(created_before=NOW - DAY)) == ["old0", "old1"]
        assert keys(s, JobFilter(created_after=NOW - 3 * DAY, created_before=NOW)) == [
            "old0",
            "old1",
        ]
        assert s.read(lambda tx: tx.jobs.count_jobs(since)) == 2
        early = _batch(s, 1, "e", created=NOW - 3 * DAY, state="failed")
        late = _batch(s, 1, "l", created=NOW)

        def listed(**kw: object) -> list[int]:
            return [b.id for b in s.read(lambda tx: tx.batches.list_batches(**kw))]  # type: ignore[arg-type]

        assert listed(created_after=NOW - DAY) == [late]
        assert listed(created_before=NOW - DAY) == [early]
        assert listed(states=["failed"]) == [early]
        assert listed(states=["failed", "running"], limit=1) == [late]
        assert listed(states=["expired"]) == []


def _batch(s: SyncStore, n: int, prefix: str, created: float = NOW, state: str = "running") -> int:
    lines = [(i + 1, f"{prefix}{i}", f"{prefix}{i}", "{}") for i in range(n)]

    def write(tx: Tx) -> int:
        new = NewBatch("q", "/v1/chat/completions", "m", remote_id=f"r-{prefix}", state=state)
        batch_id = tx.batches.add_batch(new, created)
        tx.items.add_batch_lines(batch_id, "q", "openai", lines, created)
        return batch_id

    return s.write(write)


def _ingest(s: SyncStore, batch_id: int, prefix: str, n: int, at: float) -> None:
    results = [
        (
            ItemResult(f"{prefix}{i}", "succeeded", 200, result_json='"ok"', cost=0.5),
            "succeeded",
            None,
        )
        for i in range(n)
    ]
    s.write(lambda tx: tx.items.apply_item_results(batch_id, results, at))
    s.write(lambda tx: tx.items.close_ingest(batch_id, "succeeded", at))


def _verdict(job_id: int, cost: float) -> QAResult:
    return QAResult(job_id, "judge", {"overall": 7.0}, None, None, None, 10, 4, cost, NOW)


def _fresh_counts(s: SyncStore) -> dict[tuple[str, str], int]:
    """Jobs per (queue, status) counted from the rows themselves."""
    found: dict[tuple[str, str], int] = {}
    for job in s.read(lambda tx: tx.jobs.list_jobs(ALL_JOBS)):
        found[(job.queue, job.status)] = found.get((job.queue, job.status), 0) + 1
    return found


def test_prune_deletes_old_finished_work_and_every_kept_count_stays_true(
    backend: Backend,
) -> None:
    with backend.open_sync() as s:
        enqueue(s, "q", [replace(j, tags=("t",)) for j in jobs(12)])
        enqueue(s, "other", jobs(2, "o"))
        old_done = finish(s, 5, "succeeded", OLD, cost=0.25)
        old_failed = finish(s, 2, "failed", OLD)
        recent = finish(s, 2, "succeeded", NOW - 60)
        running = s.write(lambda tx: tx.jobs.claim("w", "live", 1, 60.0, (), NOW))
        s.write(
            lambda tx: [
                tx.qa.save_qa_result(_verdict(j, 0.1), replace=False)
                for j in (old_done[0], recent[0])
            ]
        )
        batch_id = _batch(s, 2, "b", created=OLD)
        _ingest(s, batch_id, "b", 2, OLD)
        scope = PruneScope(cutoff=NOW - 30 * DAY)

        dry = s.read(lambda tx: tx.prune.count_prunable(scope))
        # 7 local jobs (enqueued, claimed, finished) + 1 verdict + 2 ingested batch lines.
        events = 7 * 3 + 1 + 2
        assert dry == Pruned(jobs=9, events=events, qa_results=1, batch_items=2, tags=7, batches=1)
        done, stopped = prune(s, scope, chunk=3)  # several transactions
        assert not stopped and done == dry
        left = [j.id for j in s.read(lambda tx: tx.jobs.list_jobs(ALL_JOBS))]
        assert not set(old_done + old_failed) & set(left)
        assert set(recent) <= set(left) and running[0].job_id in left
        assert counts(backend) == {k: v for k, v in _fresh_counts(s).items()}
        assert s.read(lambda tx: tx.stats.status_totals())["succeeded"] == 2
        assert s.read(lambda tx: tx.stats.qa_spend()).cost == pytest.approx(0.1)
        assert s.read(lambda tx: tx.qa.qa_results_for_job(old_done[0])) == []
        assert s.read(lambda tx: tx.events.list_events(old_done[0])) == []
        assert s.read(lambda tx: tx.tags.job_tags(old_done)) == {}
        assert s.read(lambda tx: tx.batches.count_batches()) == 0
        buckets = s.read(lambda tx: tx.stats.finished_per_bucket(OLD - 10, 20.0, 1))
        assert buckets == [0]  # local throughput forgot the pruned finishes
        assert s.read(lambda tx: tx.stats.finished_per_bucket(NOW - 70, 20.0, 1)) == [2]
        assert s.read(lambda tx: tx.prune.count_prunable(scope)) == Pruned()


def test_prune_keeps_a_batch_with_kept_jobs_and_unlinks_a_pruned_parent(backend: Backend) -> None:
    with backend.open_sync() as s:
        parent = _batch(s, 1, "p", created=OLD)
        _ingest(s, parent, "p", 1, OLD)
        child = s.write(
            lambda tx: tx.batches.add_batch(
                NewBatch("q", "/v1/chat/completions", "m", remote_id="r-c", parent_id=parent),
                NOW,
            )
        )
        line = [(1, "c0", "c0", "{}")]
        s.write(lambda tx: tx.items.add_batch_lines(child, "q", "openai", line, NOW))
        recent = _batch(s, 2, "m", created=OLD)
        _ingest(s, recent, "m", 2, NOW)  # its results came in just now
        done, _ = prune(s, PruneScope(cutoff=NOW - 30 * DAY))
        assert (done.jobs, done.batches) == (1, 1)
        left = {b.id: b for b in s.read(lambda tx: tx.batches.list_batches())}
        assert sorted(left) == sorted([child, recent]) and left[child].parent_id is None


def test_a_prune_stopped_between_transactions_leaves_true_counts(backend: Backend) -> None:
    with backend.open_sync() as s:
        enqueue(s, "q", jobs(10))
        finish(s, 10, "succeeded", OLD)
        asked = iter([False, False, True])  # stop after the second transaction
        done, stopped = prune(s, PruneScope(cutoff=NOW - DAY), stop=lambda: next(asked), chunk=3)
        assert stopped and done.jobs == 6
        assert counts(backend) == {("q", "succeeded"): 4} == _fresh_counts(s)
        assert s.read(lambda tx: tx.prune.count_prunable(PruneScope(cutoff=NOW - DAY))).jobs == 4


def test_a_resubmitted_batch_carries_its_parents_tags(backend: Backend) -> None:
    with backend.open_sync() as s:
        parent = _batch(s, 2, "f")
        s.write(lambda tx: tx.tags.tag_batches([parent], ["nightly"]))
        failed = [(ItemResult(f"f{i}", "expired"), "failed", "expired") for i in range(2)]
        s.write(lambda tx: tx.items.apply_item_results(parent, failed, NOW))
        s.write(lambda tx: tx.items.close_ingest(parent, "expired", NOW))
        child = s.write(lambda tx: batches.record_resubmit(tx, parent, NOW))
        assert s.read(lambda tx: tx.tags.batch_tags([child])) == {child: ["nightly"]}
        assert keys(s, JobFilter(tags=("nightly",), batch_id=child)) == ["f0", "f1"]
