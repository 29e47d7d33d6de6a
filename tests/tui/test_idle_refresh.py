"""An idle dashboard does not re-read an unchanged store on every tick, and still shows a
write from another process at the next tick."""

from __future__ import annotations

import time
from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.core.models import NewJob, Outcome
from tests.tui.conftest import SIZE, make_app


def add_job(path: Path, key: str) -> None:
    with open_sync_store(path) as db:
        db.write(lambda tx: tx.jobs.enqueue("q", "noop", [NewJob(key, {})], 1.0, None))


async def test_ticks_skip_an_unchanged_store_and_follow_a_write(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    add_job(path, "first")
    app = make_app(path, refresh=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        shown = app.last
        await pilot.pause(0.3)  # fifteen ticks
        assert app.last is shown, "an unchanged store was read again"
        add_job(path, "second")  # another connection, as another process would write
        deadline = time.monotonic() + 10
        while app.last is shown or app.last is None or app.last.page.matching != 2:
            assert time.monotonic() < deadline, "the write was not shown"
            await pilot.pause(0.02)


async def test_a_status_key_on_a_quiet_store_reads_only_the_jobs_pane(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    for key in ("a", "b", "c"):
        add_job(path, key)
    with open_sync_store(path) as db:
        [claim] = db.write(lambda tx: tx.jobs.claim("w", "t", 1, 60.0, (), 2.0))
        db.write(lambda tx: tx.jobs.finish("w", [Outcome(claim.job_id, "t", "failed", 3.0)]))
    app = make_app(path, refresh=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.pause(0.1)  # the cursor's job is in the view now
        before = app.last
        assert before is not None
        await pilot.press("4")
        deadline = time.monotonic() + 10
        while app.last is None or app.last.page.matching != 1:
            assert time.monotonic() < deadline, "the failed jobs were not shown"
            await pilot.pause(0.02)
        assert [job.id for job in app.last.page.rows] == [claim.job_id]
        assert app.last.detail is not None and app.last.detail.job.id == claim.job_id
        assert app.last.overview is before.overview  # the header was not read again
