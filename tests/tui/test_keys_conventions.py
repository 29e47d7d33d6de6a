"""Pilot tests for the terminal conventions: j/k/g/G move (and turn pages at an edge),
capital letters switch panes, and the footer and the help agree on every key."""

from __future__ import annotations

import time
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey
from textual.widgets._tabbed_content import ContentTab, TabbedContent

from batchdash.tui.app import BatchDashApp
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.screens.help import HelpScreen
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app


async def footer_keys(app: BatchDashApp, pilot: Pilot[None]) -> list[tuple[str, str]]:
    """(key, words) of every key the footer shows, once it shows them (10 s at most)."""
    deadline = time.monotonic() + 10
    while not app.query_one(Footer).query(FooterKey) and time.monotonic() < deadline:
        await pilot.pause(0.02)
    keys = app.query_one(Footer).query(FooterKey)
    return [(key.key_display, key.description or str(key.tooltip)) for key in keys]


def cursor(app: BatchDashApp) -> int:
    return app.query_one(JobTable).cursor_row


async def test_j_k_g_G_move_in_the_jobs_table_and_turn_pages_at_its_edges(
    showcase_db: Path,
) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        table = app.query_one(JobTable)
        assert app.view.page is None and cursor(app) == 0  # the live first page
        await pilot.press("j", "j")
        assert cursor(app) == 2
        await pilot.press("k")
        assert cursor(app) == 1
        await pilot.press("G")
        assert cursor(app) == table.row_count - 1
        first_page = set(table.rows)
        await pilot.press("g")
        assert cursor(app) == 0
        await pilot.press("k")  # up on the first row of the first page: nowhere to go
        assert (app.view.page, cursor(app)) == (None, 0)

        await pilot.press("G", "j")  # down from the last row: the next page, its first row
        await app.wait_for_snapshot()
        assert app.view.page is not None  # the rows after the first page's last
        assert not first_page & set(table.rows)
        assert cursor(app) == 0
        await pilot.press("k")  # up from the first row: the previous page, its last row
        await app.wait_for_snapshot()
        assert app.view.page is None  # back on the live first page
        assert set(table.rows) == first_page
        assert cursor(app) == table.row_count - 1


async def test_capital_letters_switch_panes_and_j_k_move_in_the_batches_table(
    showcase_db: Path,
) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        tabs = app.query_one(TabbedContent)
        for key, pane in (("B", "batches"), ("S", "qa"), ("W", "workers"), ("J", "jobs")):
            await pilot.press(key)
            assert tabs.active == pane
        await pilot.press("B", "j", "j")
        batches = app.query_one(BatchesTable)
        assert app.focused is batches and batches.cursor_row == 2
        await pilot.press("G")
        assert batches.cursor_row == batches.row_count - 1


async def test_the_footer_and_the_help_agree_on_every_key(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=(200, 36)) as pilot:  # wide: every footer key fits
        await app.wait_for_snapshot()
        footer = await footer_keys(app, pilot)
        assert ("r", "Retry") in footer and ("?", "Help") in footer
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        helped = {(key, text) for keys, text, _ in app.screen.help_rows for key in keys.split()}
        assert set(footer) <= helped
        for key, text in [("j", "Down"), ("k", "Up"), ("g", "First row"), ("G", "Last row")]:
            assert any(label == key and what.startswith(text) for label, what in helped)
        assert ("s", "Sort") in helped and ("J", "Jobs pane") in helped
        places = {place for _, _, place in app.screen.help_rows}
        assert places <= {"anywhere", "jobs table"}  # words, never class names
        language = str(app.screen.query_one("#filter-help", Static).content)
        for example in ("status:failed,cancelled", "key:abc*", "score<7", "provider:anthropic"):
            assert example in language
        assert [tab.label.plain for tab in app.query(ContentTab)] == [
            "Jobs (J)",
            "Batches (B)",
            "QA (S)",
            "Workers (W)",
        ]


async def palette_pick(app: BatchDashApp, pilot: Pilot[None], query: str) -> list[str]:
    """Open the palette, type `query`, return the titles offered, and run the first one."""
    await pilot.press("ctrl+p")
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*query)
    offered: list[str] = []
    deadline = time.monotonic() + 10
    while not offered and time.monotonic() < deadline:
        await pilot.pause(0.05)
        options = app.screen.query_one(CommandList)
        offered = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    await pilot.press("down", "enter")
    await app.wait_for_snapshot()
    return offered


async def test_the_palette_offers_the_dashboards_own_actions(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in (
            "Retry jobs",
            "Cancel jobs",
            "Pause/resume queue",
            "Only failed jobs",
            "Show all statuses",
            "Batches pane",
            "Theme",
            "Open batch 1",
        ):
            assert title in titles
        offered = await palette_pick(app, pilot, "only failed")
        assert "Only failed jobs" in offered[0]
        assert app.view.flt.statuses == ("failed",)
        await palette_pick(app, pilot, "workers pane")
        assert app.query_one(TabbedContent).active == "workers"
        offered = await palette_pick(app, pilot, "open batch 2")
        assert "Open batch 2" in offered[0]
        assert isinstance(app.screen, BatchDetailScreen) and app.screen.batch_id == 2


async def test_the_palette_leaves_out_writing_actions_when_read_only(showcase_db: Path) -> None:
    app = make_app(showcase_db, read_only=True)
    async with app.run_test(size=SIZE):
        await app.wait_for_snapshot()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Only failed jobs" in titles and "Retry jobs" not in titles


async def test_clicking_a_status_or_a_queue_in_the_sidebar_filters_by_it(
    showcase_db: Path,
) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.pause()
        # Lines: STATUS, 0 all, 1 pending, 2 running, 3 succeeded, 4 failed, ...
        await pilot.click("#status-pane", offset=(3, 5))
        await app.wait_for_snapshot()
        assert app.view.flt.statuses == ("failed",)
        assert {job.status for job in app.last.page.rows} == {"failed"}  # type: ignore[union-attr]
        # ..., 5 cancelled, blank, QUEUES, batch-chat, batch-papers, chat
        await pilot.click("#status-pane", offset=(3, 11))
        await app.wait_for_snapshot()
        assert app.view.flt.queues == ("chat",) and app.view.flt.statuses == ("failed",)
        await pilot.click("#status-pane", offset=(3, 11))  # the chosen queue again: all queues
        await pilot.click("#status-pane", offset=(3, 1))  # all statuses
        await app.wait_for_snapshot()
        assert app.view.flt.is_empty
