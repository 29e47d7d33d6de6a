"""What handlers report from inside a job, before any store: progress at most once a second
per job (stage changes and the attempt's end at once), nothing at all for a handler that
reports nothing, and a failed stage named in the job's error (the innermost, and only when
that failure is what ended the attempt)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from batchdash.core.attempt import run_attempt
from batchdash.core.db import DbLocation
from batchdash.core.handlers import JobContext
from batchdash.core.models import Claim
from batchdash.core.stages import AttemptId, StageReporter, StageTracker
from batchdash.core.worker import WorkerOptions


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracker(reporter: StageReporter, job_id: int = 1) -> StageTracker:
    return StageTracker(reporter, AttemptId(job_id, "t", "q", 1))


def test_progress_is_taken_at_most_once_a_second_per_job_with_its_latest_value() -> None:
    clock = Clock()
    reporter = StageReporter(clock)
    tracker = _tracker(reporter)
    for i in range(100):
        tracker.progress(i / 100, f"chunk {i}")
    first = reporter.take()
    assert first is not None and [(p.fraction, p.note) for p in first.progress] == [
        (0.99, "chunk 99")
    ]
    tracker.progress(1.0, "done")
    clock.now += 0.5
    assert reporter.take() is None  # too soon: kept for later
    clock.now += 0.5
    later = reporter.take()
    assert later is not None and [p.note for p in later.progress] == ["done"]


def test_a_stage_change_and_the_attempts_end_are_taken_at_once() -> None:
    async def run() -> None:
        clock = Clock()
        reporter = StageReporter(clock)
        tracker = _tracker(reporter)
        tracker.progress(0.1)
        assert reporter.take() is not None
        async with tracker.stage("fetch"):
            pass
        report = reporter.take()
        assert report is not None
        assert [(m.name, m.status) for m in report.marks] == [
            ("fetch", "running"),
            ("fetch", "finished"),
        ]
        assert [p.stage for p in report.progress] == [None]  # out of the stage again
        tracker.progress(0.9, "last")
        reporter.ended(1)
        final = reporter.take()
        assert final is not None and [p.note for p in final.progress] == ["last"]
        assert reporter.take() is None

    asyncio.run(run())


def test_a_handler_that_reports_nothing_leaves_nothing_to_write() -> None:
    reporter = StageReporter(Clock())
    reporter.ended(1)
    assert reporter.take() is None


def test_progress_is_clamped_and_nan_refused() -> None:
    reporter = StageReporter(Clock())
    tracker = _tracker(reporter)
    tracker.progress(1.7, "x" * 500)
    report = reporter.take()
    assert report is not None
    assert report.progress[0].fraction == 1.0 and len(report.progress[0].note or "") == 200
    with pytest.raises(ValueError, match="NaN"):
        tracker.progress(float("nan"))


async def _nested(job: JobContext) -> Any:
    async with job.stage("outer"), job.stage("inner"):
        raise TimeoutError("slow model")


async def _recovered(job: JobContext) -> Any:
    try:
        async with job.stage("flaky"):
            raise OSError("once")
    except OSError:
        pass
    raise RuntimeError("later, outside any stage")


async def _timed_out(job: JobContext) -> Any:
    async with job.stage("generate"):
        await asyncio.sleep(30)


#: The stage each handler above fails first.
FAILS_IN = {"nested": "inner", "recovered": "flaky", "timed_out": "generate"}


def _attempt(name: str, reporter: StageReporter, tmp_path: Path) -> str | None:
    """Run the handler `_NAME` of this module as one attempt; its error."""
    claim = Claim(1, "q", "k", f"{__name__}:_{name}", {}, 1, 3, "t", timeout=0.1)
    options = WorkerOptions(where=DbLocation(path=tmp_path / "unused.db"))
    outcome = asyncio.run(run_attempt(claim, options, reporter))
    return outcome.error


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nested", "stage inner: TimeoutError: slow model"),
        ("recovered", "RuntimeError: later, outside any stage"),
        ("timed_out", "stage generate: no result within 0.1s"),
    ],
)
def test_the_error_names_the_stage_whose_failure_ended_the_attempt(
    name: str, error: str, tmp_path: Path
) -> None:
    reporter = StageReporter(Clock())
    assert _attempt(name, reporter, tmp_path) == error
    report = reporter.take()
    assert report is not None
    failed = [(m.name, m.error) for m in report.marks if m.status == "failed"]
    assert failed[0][0] == FAILS_IN[name]
    if name == "timed_out":
        assert failed == [("generate", "cancelled")]
