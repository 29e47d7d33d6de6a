"""The dashboard's filter box takes `tag:`, and the job detail pane shows a job's tags."""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.core.models import ALL_JOBS, NewJob
from tests.tui.conftest import SIZE, make_app
from tests.tui.test_app import filter_to, rows
from tests.tui.test_long_texts import detail_text, showing


async def test_a_tag_filter_lists_the_tagged_jobs_and_the_detail_names_the_tags(
    showcase_db: Path,
) -> None:
    with open_sync_store(showcase_db) as db:
        picked = db.tx.jobs.list_jobs(ALL_JOBS, limit=2)
        tagged = [NewJob(job.key, None, tags=("urgent", "run-7")) for job in picked]
        db.write(lambda tx: tx.tags.tag_jobs(picked[0].queue, tagged[:1]))
        db.write(lambda tx: tx.tags.tag_jobs(picked[1].queue, tagged[1:]))
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "tag:urgent")
        assert sorted(rows(app)) == sorted(job.id for job in picked)
        await showing(app, rows(app)[0])
        assert "tags run-7 urgent" in detail_text(app)
