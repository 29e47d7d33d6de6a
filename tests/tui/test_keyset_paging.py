"""Paging the jobs pane by keyset: a page stays on its rows while new jobs arrive, the
status line's "N–M of K" stays true, and deep in a long text-filtered list it says how
far it counted instead of guessing."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from batchdash.core.db import open_sync_store
from batchdash.core.models import NewJob
from batchdash.tui.app import BatchDashApp
from batchdash.tui.widgets.jobs import JobTable
from batchdash.tui.widgets.statusline import StatusLine
from tests.tui.conftest import SIZE, make_app


def add_jobs(path: Path, count: int, prefix: str, start: int = 0) -> None:
    with open_sync_store(path) as db:
        jobs = [NewJob(key=f"{prefix}{i:05d}", payload={}) for i in range(start, start + count)]
        db.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))


def rows(app: BatchDashApp) -> list[int]:
    return [int(str(key.value)) for key in app.query_one(JobTable).rows]


def status(app: BatchDashApp) -> str:
    return str(app.query_one(StatusLine).content)


async def test_a_page_keeps_its_rows_and_true_numbers_while_jobs_arrive(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    add_jobs(path, 250, "doc-")
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("right_square_bracket")
        await app.wait_for_snapshot()
        second = rows(app)
        assert second == list(range(150, 50, -1)) and "101–200 of 250" in status(app)
        add_jobs(path, 5, "new-")  # five newer jobs in front of this page
        await app.wait_for_snapshot()
        assert rows(app) == second and "106–205 of 255" in status(app)
        await pilot.press("right_square_bracket")
        await app.wait_for_snapshot()
        assert rows(app) == list(range(50, 0, -1)) and "206–255 of 255" in status(app)
        await pilot.press("right_square_bracket")  # the last page: nothing after it
        await app.wait_for_snapshot()
        assert "206–255 of 255" in status(app)
        await pilot.press("left_square_bracket", "left_square_bracket")  # faster than reads
        await app.wait_for_snapshot()
        assert rows(app) == list(range(250, 150, -1)) and "6–105 of 255" in status(app)
        await pilot.press("left_square_bracket")  # the first page follows new jobs again
        await app.wait_for_snapshot()
        add_jobs(path, 1, "newest-")
        await app.wait_for_snapshot()
        assert rows(app)[0] == 256 and "1–100 of 256" in status(app)


async def test_a_text_filtered_page_says_its_number_as_turned_to(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    add_jobs(path, 1_250, "doc-")
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        app.screen.query_one("#filter-input", Input).value = "doc"
        await pilot.press("enter")
        await app.wait_for_snapshot()
        assert "1–100 of 1,000+" in status(app)  # the first page: nothing in front
        for _ in range(11):
            await pilot.press("right_square_bracket")
            await app.wait_for_snapshot()
        assert rows(app)[0] == 150
        assert "page 12 · 100 rows of 1,000+" in status(app)  # nothing in front counted
        await pilot.press("left_square_bracket")
        await app.wait_for_snapshot()
        assert rows(app)[0] == 250 and "page 11 · 100 rows" in status(app)
        for _ in range(10):
            await pilot.press("left_square_bracket")
            await app.wait_for_snapshot()
        assert rows(app)[0] == 1_250 and "1–100 of 1,000+" in status(app)
        await pilot.press("left_square_bracket")  # the first page: nothing before it
        await app.wait_for_snapshot()
        assert "1–100 of 1,000+" in status(app)
