"""The stages repository's contract on every back end: stage runs and their timeline events,
progress on the job, fencing by the claim, what a new claim clears, and per-stage stats."""

from __future__ import annotations

import time

import pytest

from batchdash.core import queue
from batchdash.core.db.ports import SyncStore
from batchdash.core.models import Claim
from batchdash.core.stage_records import ProgressMark, StageMark, StageStatus
from tests.conftest import wait_until
from tests.contract.backends import Backend, events, jobs

RUNNING, FINISHED, FAILED = StageStatus.RUNNING, StageStatus.FINISHED, StageStatus.FAILED


def _claim(s: SyncStore, n: int = 1, lease: float = 60.0) -> list[Claim]:
    s.write(lambda tx: tx.jobs.enqueue("q", "sim", jobs(n), time.time(), None))
    return s.write(lambda tx: tx.jobs.claim("w1", queue.new_token(), n, lease, (), time.time()))


def _mark(c: Claim, seq: int, name: str, status: StageStatus, **kw: object) -> StageMark:
    return StageMark(c.job_id, c.token, c.queue, c.attempts, seq, name, 100.0 * seq, status, **kw)  # type: ignore[arg-type]


def test_stage_runs_are_stored_in_order_with_their_events(backend: Backend) -> None:
    with backend.open_sync() as s:
        (c,) = _claim(s)
        s.write(lambda tx: tx.stages.save([_mark(c, 1, "fetch", RUNNING)], []))
        done = _mark(c, 1, "fetch", FINISHED, duration=0.5)
        failed = _mark(c, 2, "generate", FAILED, duration=1.25, error="TimeoutError: slow")
        s.write(lambda tx: tx.stages.save([done, _mark(c, 2, "generate", RUNNING), failed], []))
        runs = s.read(lambda tx: tx.stages.job_stages(c.job_id))
        details = [e.detail for e in s.read(lambda tx: tx.events.list_events(c.job_id))]
    assert [(r.attempt, r.seq, r.name, r.status, r.duration, r.error) for r in runs] == [
        (1, 1, "fetch", "finished", 0.5, None),
        (1, 2, "generate", "failed", 1.25, "TimeoutError: slow"),
    ]
    assert events(backend, c.job_id)[-4:] == [
        "stage_started",
        "stage_finished",
        "stage_started",
        "stage_failed",
    ]
    assert details[-3] == "fetch, attempt 1, 0.50s"
    assert details[-1] == "generate, attempt 1, 1.25s: TimeoutError: slow"


def test_progress_is_stored_on_the_running_job_and_a_new_claim_clears_it(
    backend: Backend,
) -> None:
    with backend.open_sync() as s:
        (c,) = _claim(s, lease=0.05)
        mark = ProgressMark(c.job_id, c.token, "generate", 0.4, "chunk 4/10")
        s.write(lambda tx: tx.stages.save([], [mark]))
        job = s.read(lambda tx: tx.jobs.get_job(c.job_id))
        assert (job.stage, job.progress, job.progress_note) == ("generate", 0.4, "chunk 4/10")
        # The lease runs out on the store's clock; then the job goes back to pending.
        wait_until(lambda: s.write(lambda tx: tx.jobs.rescue(queue.ALL_JOBS, time.time())))
        kept = s.read(lambda tx: tx.jobs.get_job(c.job_id))
        assert (kept.status, kept.progress) == ("pending", 0.4)
        s.write(lambda tx: tx.jobs.claim("w2", queue.new_token(), 1, 60.0, (), time.time()))
        again = s.read(lambda tx: tx.jobs.get_job(c.job_id))
    assert (again.status, again.stage, again.progress, again.progress_note) == (
        "running",
        None,
        None,
        None,
    )


def test_reports_of_a_lost_claim_are_dropped(backend: Backend) -> None:
    with backend.open_sync() as s:
        (c,) = _claim(s)
        stale = Claim(c.job_id, c.queue, c.key, c.handler, None, 1, 3, token="old")
        s.write(
            lambda tx: tx.stages.save(
                [_mark(stale, 1, "fetch", RUNNING)],
                [ProgressMark(c.job_id, "old", "fetch", 0.9, None)],
            )
        )
        assert s.read(lambda tx: tx.stages.job_stages(c.job_id)) == []
        assert s.read(lambda tx: tx.jobs.get_job(c.job_id)).progress is None
    assert "stage_started" not in events(backend, c.job_id)


def test_stage_stats_give_percentiles_and_failures_per_queue_and_stage(backend: Backend) -> None:
    with backend.open_sync() as s:
        claims = _claim(s, n=5)
        marks = [
            _mark(c, 1, "fetch", FINISHED, duration=float(i + 1)) for i, c in enumerate(claims)
        ]
        marks.append(_mark(claims[0], 2, "write", FAILED, duration=0.1, error="OSError"))
        marks.append(_mark(claims[1], 2, "write", RUNNING))
        s.write(lambda tx: tx.stages.save(marks, []))
        stats = s.read(lambda tx: tx.stages.stage_stats())
        assert s.read(lambda tx: tx.stages.stage_stats("other")) == []
    by_name = {st.name: st for st in stats}
    fetch, write = by_name["fetch"], by_name["write"]
    assert (fetch.queue, fetch.runs, fetch.failed) == ("q", 5, 0)
    assert fetch.p50 == pytest.approx(3.0)
    assert fetch.p95 == pytest.approx(4.8)  # interpolated as percentile_cont
    assert (write.runs, write.failed, write.p50, write.p95) == (1, 1, None, None)


def test_a_late_start_never_undoes_a_saved_end(backend: Backend) -> None:
    with backend.open_sync() as s:
        (c,) = _claim(s)
        s.write(lambda tx: tx.stages.save([_mark(c, 1, "fetch", FINISHED, duration=0.5)], []))
        s.write(lambda tx: tx.stages.save([_mark(c, 1, "fetch", RUNNING)], []))
        (run,) = s.read(lambda tx: tx.stages.job_stages(c.job_id))
    assert (run.status, run.duration) == ("finished", 0.5)
