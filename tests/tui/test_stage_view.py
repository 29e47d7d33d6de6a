"""Stages and progress in the dashboard: the jobs table shows a running job's stage and
progress (at 80×24 too), and the job detail a per-attempt stage timeline with durations."""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.core.models import JobFilter
from batchdash.core.stage_records import ProgressMark, StageMark, StageStatus
from batchdash.tui import showcase
from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app
from tests.tui.test_long_texts import detail_text, showing


def _report_stages(path: Path) -> int:
    """Give a running showcase job a crashed first attempt's stages, live ones and progress."""
    with open_sync_store(path) as db:
        job = db.tx.jobs.list_jobs(JobFilter(statuses=("running",), queues=("papers",)))[0]
        token, now = job.claim_token or "", showcase.NOW

        def mark(attempt: int, seq: int, name: str, status: StageStatus, **kw: object) -> StageMark:
            at = now - 60 * (3 - attempt) - 10 + seq
            return StageMark(job.id, token, job.queue, attempt, seq, name, at, status, **kw)  # type: ignore[arg-type]

        marks = [
            mark(job.attempts - 1, 1, "fetch", StageStatus.FINISHED, duration=0.8),
            mark(job.attempts - 1, 2, "generate_notes", StageStatus.RUNNING),
            mark(job.attempts, 1, "fetch", StageStatus.FINISHED, duration=0.6),
            mark(job.attempts, 2, "generate_notes", StageStatus.RUNNING),
        ]
        progress = ProgressMark(job.id, token, "generate_notes", 0.4, "chunk 4/10")
        db.write(lambda tx: tx.stages.save(marks, [progress]))
        return job.id


async def test_the_jobs_table_shows_a_running_jobs_stage_and_progress(showcase_db: Path) -> None:
    job_id = _report_stages(showcase_db)
    app = make_app(showcase_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("2")  # running jobs
        await app.wait_for_snapshot()
        table = app.query_one(JobTable)
        cell = str(table.get_row(str(job_id))[-1])
        assert cell.startswith("40% generate_n")
        assert str(list(table.columns.values())[-1].label) == "ERROR / STAGE"


async def test_the_detail_shows_each_attempts_stages_with_durations(showcase_db: Path) -> None:
    job_id = _report_stages(showcase_db)
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("2")
        await app.wait_for_snapshot()
        table = app.query_one(JobTable)
        table.move_cursor(row=table.get_row_index(str(job_id)), animate=False)
        await showing(app, job_id)
        lines = [line.split() for line in detail_text(app).splitlines()]
    start = lines.index(["stages"])
    assert lines[start + 1] == ["ATTEMPT", "STAGE", "TOOK", "STATE"]
    first, second = lines[start + 2 : start + 4], lines[start + 4 : start + 6]
    assert first[0][2:] == ["fetch", "800ms", "ok"] and first[1] == [
        "generate_notes",
        "-",
        "interrupted",
    ]
    assert second[0][2:] == ["fetch", "600ms", "ok"]
    assert second[1][0] == "generate_notes" and second[1][-1] == "running"
    assert any("progress" in line and "chunk" in line for line in map(" ".join, lines))
