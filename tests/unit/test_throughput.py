"""The header's throughput, ETA and spend on a real store with an injected clock.

Jobs are claimed and finished through the store's own write functions at chosen times, so
each test states exactly what happened and when, and checks what the header would say.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import snapshot
from batchdash.core.batch_records import ItemResult, NewBatch
from batchdash.core.db import open_sync_store
from batchdash.core.db.ports import Tx
from batchdash.core.liveness import this_host
from batchdash.core.models import QA_QUEUE_PREFIX, JobFilter, NewJob, Outcome, Worker
from batchdash.core.qa_models import QAResult
from batchdash.tui import once

T0 = 1_800_000_000.0
#: 4 jobs a second, one at a time: the true rate is 240/min.
STEP = 0.25
TRUE_RATE = 60 / STEP

_tokens = itertools.count()


@pytest.fixture
def conn(db_path: Path) -> Iterator[Tx]:
    with open_sync_store(db_path) as db:
        yield db.tx


def enqueue(conn: Tx, n: int, queue: str = "q", at: float = T0 - 60) -> None:
    jobs = [NewJob(f"{queue}-{i:05d}", {"i": i}) for i in range(n)]
    conn.jobs.enqueue(queue, "sim", jobs, at, None)


def live_worker(conn: Tx, at: float, queues: list[str] | None = None) -> None:
    """A worker of this very process, heartbeating at `at`: alive for the snapshot."""
    worker = Worker(
        id="w1",
        host=this_host(),
        pid=os.getpid(),
        started_at=T0 - 60,
        heartbeat_at=at,
        heartbeat_interval=1.0,
        state="busy",
        queues=queues or [],
    )
    conn.workers.register_worker(worker)


def run(conn: Tx, start: float, seconds: float, status: str = "succeeded") -> None:
    """One worker runs jobs back to back from `start` for `seconds`, STEP each."""
    t = start
    while t + STEP <= start + seconds + 1e-9:
        token = f"tok-{next(_tokens)}"
        claims = conn.jobs.claim("w1", token, 1, 60.0, (), t)
        assert claims, "ran out of jobs"
        outcome = Outcome(claims[0].job_id, token, status, t + STEP, '{"ok": 1}', cost=0.001)
        conn.jobs.finish("w1", [outcome])
        t += STEP


def cancel_pending(conn: Tx, n: int, at: float) -> None:
    """Cancel `n` pending jobs, as `batchdash cancel` would."""
    pending = conn.jobs.list_jobs(JobFilter(statuses=("pending",)), limit=n)
    conn.jobs.cancel(JobFilter(ids=tuple(j.id for j in pending)), at)


def head(conn: Tx, now: float) -> snapshot.Overview:
    return snapshot.overview(conn, now)


def test_rate_at_the_start_of_a_run_is_the_true_rate(conn: Tx) -> None:
    enqueue(conn, 1500)
    run(conn, T0, 31)
    live_worker(conn, T0 + 31)
    shown = head(conn, T0 + 31)
    # The old header divided by 5 minutes: 24/min and an ETA of 57 minutes.
    assert shown.rate_per_minute == pytest.approx(TRUE_RATE, rel=0.02)
    remaining = 1500 - 124
    assert shown.eta_seconds == pytest.approx(remaining / TRUE_RATE * 60, rel=0.02)
    assert once.eta_phrase(shown) == "ETA 5m46s"


def test_rate_over_a_steady_run_longer_than_the_window(conn: Tx) -> None:
    enqueue(conn, 3000)
    run(conn, T0, 600)
    live_worker(conn, T0 + 600)
    assert head(conn, T0 + 600).rate_per_minute == pytest.approx(TRUE_RATE, rel=0.02)


def test_a_new_run_after_a_pause_is_not_averaged_over_the_gap(conn: Tx) -> None:
    enqueue(conn, 1000)
    run(conn, T0, 20)
    run(conn, T0 + 140, 30)
    live_worker(conn, T0 + 170)
    assert head(conn, T0 + 170).rate_per_minute == pytest.approx(TRUE_RATE, rel=0.02)


def test_rate_drops_to_idle_after_work_stops(conn: Tx) -> None:
    enqueue(conn, 500)
    run(conn, T0, 60)
    live_worker(conn, T0 + 180)
    shown = head(conn, T0 + 180)
    assert shown.idle and shown.rate_per_minute == 0
    assert shown.eta_seconds is None
    assert once.rate_phrase(shown) == "idle"
    assert once.eta_phrase(shown) == "ETA unknown"


def test_cancelling_jobs_is_not_throughput(conn: Tx) -> None:
    enqueue(conn, 1000)
    run(conn, T0, 60)
    live_worker(conn, T0 + 61)
    before = head(conn, T0 + 61)
    cancel_pending(conn, 250, T0 + 60.5)
    after = head(conn, T0 + 61)
    assert after.counts["cancelled"] == 250
    assert after.rate_per_minute == pytest.approx(before.rate_per_minute)
    assert after.throughput == before.throughput


def test_remote_batch_ingests_are_not_throughput(conn: Tx) -> None:
    batch_id = conn.batches.add_batch(NewBatch("remote", "/v1/chat/completions", "m"), T0)
    lines = [(i, f"c{i}", f"k{i}", "{}") for i in range(400)]
    conn.items.add_batch_lines(batch_id, "remote", "openai", lines, T0)
    results = [(ItemResult(f"c{i}", "succeeded", 200), "succeeded", None) for i in range(400)]
    conn.items.apply_item_results(batch_id, results, T0 + 30)
    live_worker(conn, T0 + 31)
    shown = head(conn, T0 + 31)
    assert shown.counts["succeeded"] == 400
    assert sum(shown.throughput) == 0 and shown.rate_per_minute == 0 and shown.idle
    # No local job is waiting: nothing for an ETA to cover.
    assert once.eta_phrase(shown) == "ETA done"


def test_remote_lines_waiting_do_not_count_in_the_local_eta(conn: Tx) -> None:
    enqueue(conn, 200)
    run(conn, T0, 30)
    batch_id = conn.batches.add_batch(NewBatch("remote", "/v1/chat/completions", "m"), T0)
    lines = [(i, f"c{i}", f"k{i}", "{}") for i in range(5000)]
    conn.items.add_batch_lines(batch_id, "remote", "openai", lines, T0)
    live_worker(conn, T0 + 30)
    shown = head(conn, T0 + 30)
    assert shown.eta_seconds == pytest.approx((200 - 120) / TRUE_RATE * 60, rel=0.02)


def test_no_live_worker_means_no_eta(conn: Tx) -> None:
    enqueue(conn, 100)
    run(conn, T0, 10)
    cancel_pending(conn, 2, T0 + 10)
    shown = head(conn, T0 + 12)  # no worker ever registered
    assert shown.eta_seconds is None
    assert shown.stalled == 100 - 40 - 2 and shown.stall_reason == "no live worker"
    assert once.eta_phrase(shown) == "no live worker"


def test_a_stopped_worker_is_not_live(conn: Tx) -> None:
    enqueue(conn, 100)
    run(conn, T0, 10)
    live_worker(conn, T0 + 10)
    conn.workers.set_worker_state("w1", "stopped", T0 + 10)
    assert once.eta_phrase(head(conn, T0 + 11)) == "no live worker"


def test_a_paused_queue_means_no_eta(conn: Tx) -> None:
    enqueue(conn, 100)
    run(conn, T0, 10)
    live_worker(conn, T0 + 10)
    conn.queues.set_paused("q", True, T0 + 10)
    shown = head(conn, T0 + 11)
    assert shown.eta_seconds is None and shown.stalled == 60
    assert once.eta_phrase(shown) == "queue paused"
    assert once.pending_notes(shown) == " (60 paused)"


def test_eta_covers_only_queues_a_live_worker_serves(conn: Tx) -> None:
    enqueue(conn, 100)
    enqueue(conn, 30, queue="other")
    run(conn, T0, 10)
    live_worker(conn, T0 + 10, queues=["q"])
    shown = head(conn, T0 + 10)
    assert shown.stalled == 30 and shown.stall_reason == "no live worker"
    assert shown.eta_seconds == pytest.approx(60 / TRUE_RATE * 60, rel=0.05)
    assert once.pending_notes(shown) == " (30 without worker)"


def test_a_running_batch_has_its_own_eta(conn: Tx) -> None:
    batch_id = conn.batches.add_batch(NewBatch("remote", "/v1/chat/completions", "m"), T0)
    fields = {"state": "running", "in_progress_at": T0, "total": 100, "completed": 20}
    conn.batches.update_batch(batch_id, {**fields, "failed": 5}, T0 + 60)
    row = snapshot.batch_row(conn.batches.get_batch(batch_id), T0 + 60)
    assert row.eta_seconds == pytest.approx(75 * 60 / 25)
    assert once.batch_eta_text(row) == "3m00s"
    # Counts are as of the last poll: the time since then is already spent.
    conn.batches.update_batch(batch_id, {"polled_at": T0 + 60}, T0 + 60)
    row = snapshot.batch_row(conn.batches.get_batch(batch_id), T0 + 90)
    assert row.eta_seconds == pytest.approx(75 * 60 / 25 - 30)
    conn.batches.update_batch(batch_id, {"completed": 0, "failed": 0}, T0 + 60)
    row = snapshot.batch_row(conn.batches.get_batch(batch_id), T0 + 60)
    assert row.eta_seconds is None and once.batch_eta_text(row) == "unknown"


def test_spend_adds_qa_judges_to_the_work(conn: Tx, db_path: Path) -> None:
    enqueue(conn, 10)
    run(conn, T0, 1)  # 4 jobs at $0.001
    job_ids = [j.id for j in conn.jobs.list_jobs(JobFilter(statuses=("succeeded",)))]
    for job_id in job_ids[:2]:
        conn.qa.save_qa_result(verdict(job_id, 0.0005), replace=False)
    # A QA batch's lines are jobs too; their cost is the verdicts' cost, counted once.
    enqueue(conn, 1, queue=QA_QUEUE_PREFIX + "q")
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE jobs SET cost = 0.0005 WHERE queue = ?", (QA_QUEUE_PREFIX + "q",))
    raw.close()
    shown = head(conn, T0 + 2)
    assert shown.work.cost == pytest.approx(0.004)
    assert shown.qa.cost == pytest.approx(0.001)
    assert shown.total_cost == pytest.approx(0.005)
    data = shown.to_dict()
    assert (data["cost"], data["qa_cost"], data["total_cost"]) == (0.004, 0.001, 0.005)
    # A rescore replaces the verdict: the total follows, it does not add up twice.
    conn.qa.save_qa_result(verdict(job_ids[1], 0.002), replace=True)
    assert head(conn, T0 + 2).qa.cost == pytest.approx(0.0025)


def verdict(job_id: int, cost: float) -> QAResult:
    return QAResult(
        job_id=job_id,
        judge="gpt-4o-mini",
        scores={"overall": 8.0},
        comment=None,
        error=None,
        raw=None,
        input_tokens=100,
        output_tokens=10,
        cost=cost,
        created_at=T0 + 1,
    )
