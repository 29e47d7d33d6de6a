"""Stages and progress as text, shared by `jobs show`, `stats` and the dashboard (no textual).

A stage run still marked running belongs to a live attempt only while the job runs that
attempt; otherwise its worker died or let it go mid-stage, and it shows as `interrupted`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from batchdash.core.models import Job, JobStatus
from batchdash.core.stage_records import StageRun, StageStat, StageStatus
from batchdash.tui.fmt import duration, one_line, table


def progress_text(job: Job) -> str:
    """`40% generate chunk 4/10`: a job's progress and, while it runs, its current stage ('' if
    it reported none); the figure first, so a narrow column still shows it. A job no longer
    running keeps the last figure and note it reported (how far it got), but no stage."""
    stage = job.stage if job.status == JobStatus.RUNNING else None
    parts = [f"{job.progress:.0%}" if job.progress is not None else "", stage or ""]
    parts.append(job.progress_note or "")
    return " ".join(p for p in parts if p)


def run_state(run: StageRun, job: Job, now: float) -> str:
    """`ok`, `failed: …`, `running` (with how long so far) or `interrupted`."""
    if run.status == StageStatus.FINISHED:
        return "ok"
    if run.status == StageStatus.FAILED:
        return f"failed: {run.error}" if run.error else "failed"
    if job.status == JobStatus.RUNNING and job.attempts == run.attempt:
        return "running"
    return "interrupted"


def run_duration(run: StageRun, job: Job, now: float) -> str:
    """A run's duration; a live one's time so far."""
    if run.duration is None and run_state(run, job, now) == "running":
        return duration(max(0.0, now - run.started_at))
    return duration(run.duration)


def timeline_rows(
    runs: Sequence[StageRun], job: Job, now: float, width: int = 120
) -> list[tuple[str, str, str, str]]:
    """(attempt, stage, duration, state) per run; the attempt is named on its first row."""
    rows = []
    last = None
    for run in runs:
        label = f"attempt {run.attempt}" if run.attempt != last else ""
        last = run.attempt
        state = one_line(run_state(run, job, now), width)
        rows.append((label, run.name, run_duration(run, job, now), state))
    return rows


def timeline_lines(runs: Sequence[StageRun], job: Job, now: float) -> Iterator[str]:
    """The stage timeline as aligned text lines (nothing for a job without stages)."""
    if runs:
        yield from table(("attempt", "stage", "took", "state"), timeline_rows(runs, job, now))


def run_json(run: StageRun) -> dict[str, object]:
    """One stage run as JSON-ready data (times in epoch seconds)."""
    return {
        "attempt": run.attempt,
        "seq": run.seq,
        "name": run.name,
        "started_at": run.started_at,
        "status": run.status,
        "duration": run.duration,
        "error": run.error,
    }


def stat_json(stat: StageStat) -> dict[str, object]:
    """One queue's stage figures as JSON-ready data (seconds)."""
    return {
        "queue": stat.queue,
        "stage": stat.name,
        "runs": stat.runs,
        "failed": stat.failed,
        "p50": stat.p50,
        "p95": stat.p95,
    }
