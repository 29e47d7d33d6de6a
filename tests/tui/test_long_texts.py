"""Multi-megabyte errors and results: pages read a bounded head, the detail shows a head with
a marker saying how much is left out and how to see all of it."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from batchdash.core import snapshot
from batchdash.core.db import open_sync_store
from batchdash.core.models import JobFilter, NewJob, Outcome
from batchdash.core.snapshot import DETAIL_TEXT_CHARS
from batchdash.tui import showcase
from batchdash.tui.app import BatchDashApp
from batchdash.tui.widgets.detail import JobDetailPane
from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app

#: 7 MB of error text, with multi-byte characters so bytes and characters differ.
HUGE_ERROR = "Traceback: é " * 500_000
#: ~3 MB of result.
HUGE_RESULT = {"text": "x" * 3_000_000}


@pytest.fixture
def huge_db(showcase_db: Path) -> Path:
    """The showcase plus a failed job with a huge error and a succeeded one with a huge result."""
    at = showcase.NOW - 5
    with open_sync_store(showcase_db) as db:
        db.write(
            lambda c: c.jobs.enqueue(
                "huge", "sim", [NewJob("big-result", {}), NewJob("big-error", {})], at, None
            )
        )
        claims = db.write(lambda c: c.jobs.claim("w", "t", 2, 60.0, ("huge",), at))
        ids = sorted(claim.job_id for claim in claims)
        outcomes = [
            Outcome(ids[0], "t", "succeeded", at + 1, result_json=json.dumps(HUGE_RESULT)),
            Outcome(ids[1], "t", "failed", at + 1, error=HUGE_ERROR, error_kind="x"),
        ]
        db.write(lambda c: c.jobs.finish("w", outcomes))
    return showcase_db


def huge_ids(path: Path) -> tuple[int, int]:
    """(the big-result job, the big-error job)."""
    with open_sync_store(path) as db:
        jobs = db.tx.jobs.list_jobs(JobFilter(queues=("huge",)), with_bodies=False)
    return jobs[0].id, jobs[1].id


def test_list_pages_and_the_detail_read_bounded_texts(huge_db: Path) -> None:
    result_id, error_id = huge_ids(huge_db)
    with open_sync_store(huge_db) as db:
        page = db.tx.jobs.list_jobs(JobFilter(queues=("huge",)), with_bodies=False)
        assert len(next(j for j in page if j.id == error_id).error or "") == 1000
        detail = snapshot.job_detail(db.tx, error_id, showcase.NOW)
        assert detail is not None and len(detail.job.error or "") == DETAIL_TEXT_CHARS
        assert detail.cut == {"error": len(HUGE_ERROR.encode())}
        detail = snapshot.job_detail(db.tx, result_id, showcase.NOW)
        assert detail is not None and len(detail.job.result) == DETAIL_TEXT_CHARS
        assert set(detail.cut) == {"result"}
        assert db.tx.jobs.get_job(error_id).error == HUGE_ERROR  # `jobs show` gets all


async def showing(app: BatchDashApp, job_id: int) -> None:
    """Refresh until the detail pane shows `job_id` (it follows the cursor after a pause)."""
    deadline = time.monotonic() + 10
    while app.last is None or app.last.detail is None or app.last.detail.job.id != job_id:
        assert time.monotonic() < deadline, "the detail did not follow the cursor"
        await app.wait_for_snapshot()


def detail_text(app: BatchDashApp) -> str:
    """The detail pane's whole content as plain text, unwrapped."""
    body = app.query_one(JobDetailPane).query_one("#detail-body", Static)
    console = Console(width=400, record=True, file=io.StringIO())  # no wrapping
    console.print(body.content)
    return console.export_text()


async def test_the_detail_shows_a_head_and_says_how_much_more(huge_db: Path) -> None:
    result_id, error_id = huge_ids(huge_db)
    app = make_app(huge_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("4")  # failed, newest first: the big error is on top
        await app.wait_for_snapshot()
        table = app.query_one(JobTable)
        assert table.highlighted_id() == error_id
        await showing(app, error_id)
        text = detail_text(app)
        assert f"… 7.0 MB more; `batchdash jobs show {error_id}` for all" in text
        assert len(text) < DETAIL_TEXT_CHARS + 5_000
        error_cell = str(table.get_row(str(error_id))[-1])
        assert error_cell.startswith("Traceback: é") and error_cell.endswith("…")
        assert len(error_cell) <= 60
        pane = app.query_one(JobDetailPane)
        pane.scroll_end(animate=False)
        await pilot.pause()
        assert pane.scroll_y > 0
        await pilot.press("3")  # succeeded: the big result, shown from its top
        await showing(app, result_id)
        assert f"MB more; `batchdash jobs show {result_id}` for all" in detail_text(app)
        assert pane.scroll_y == 0
