"""Stages and progress in the dashboard: the jobs table shows a running job's stage and
progress (at 80×24 too), and the job detail a per-attempt stage timeline with durations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from batchdash.core import queue
from batchdash.core.db import open_sync_store
from batchdash.core.models import Claim, JobFilter, NewJob
from batchdash.core.stage_records import ProgressMark, StageMark, StageStatus
from batchdash.tui import showcase
from batchdash.tui.widgets.jobs import JobTable
from tests.conftest import wait_until
from tests.tui.conftest import SIZE, make_app
from tests.tui.test_long_texts import detail_text, showing

FINISHED, RUNNING = StageStatus.FINISHED, StageStatus.RUNNING
STAGED = JobFilter(queues=("staged",))  # not the showcase's own running jobs


def _report_stages(path: Path) -> int:
    """A job whose first attempt died in its second stage and whose second attempt is in it,
    40% through (its stage times are the showcase clock's)."""
    with open_sync_store(path) as db:
        now = time.time()
        db.write(lambda tx: tx.jobs.enqueue("staged", "sim", [NewJob("talk-1", {})], now, None))

        def claim(lease: float) -> Claim:
            new = queue.new_token()
            return db.write(lambda tx: tx.jobs.claim("w", new, 1, lease, ("staged",), time.time()))[
                0
            ]

        def mark(c: Claim, seq: int, name: str, status: StageStatus, **kw: Any) -> StageMark:
            at = showcase.NOW - 60 * (3 - c.attempts) + seq
            return StageMark(c.job_id, c.token, c.queue, c.attempts, seq, name, at, status, **kw)

        first = claim(0.01)
        db.write(
            lambda tx: tx.stages.save(
                [mark(first, 1, "fetch", FINISHED, duration=0.8), mark(first, 2, "notes", RUNNING)],
                [],
            )
        )
        wait_until(lambda: db.write(lambda tx: tx.jobs.rescue(STAGED, time.time())))
        second = claim(3600.0)
        marks = [
            mark(second, 1, "fetch", FINISHED, duration=0.6),
            mark(second, 2, "notes", RUNNING),
        ]
        progress = ProgressMark(second.job_id, second.token, "notes", 0.4, "chunk 4/10")
        db.write(lambda tx: tx.stages.save(marks, [progress]))
        return second.job_id


async def test_the_jobs_table_shows_a_running_jobs_stage_and_progress(showcase_db: Path) -> None:
    job_id = _report_stages(showcase_db)
    app = make_app(showcase_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("2")  # running jobs
        await app.wait_for_snapshot()
        table = app.query_one(JobTable)
        cell = str(table.get_row(str(job_id))[-1])
        assert cell.startswith("40% notes chun")  # 15 cells wide at 80 columns
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
    assert first == [["attempt", "1", "fetch", "800ms", "ok"], ["notes", "-", "interrupted"]]
    assert second == [["attempt", "2", "fetch", "600ms", "ok"], ["notes", "58.0s", "running"]]
    assert any("progress" in line and "chunk" in line for line in map(" ".join, lines))
