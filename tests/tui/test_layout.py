"""Layout at real terminal sizes: nothing stray at the pane edges, nothing pushed off screen
at 80×24, counts of millions on one line. Read from the screen as a user sees it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from batchdash.core import snapshot
from batchdash.core.db import open_sync_store
from batchdash.core.models import JobFilter
from batchdash.tui import showcase
from batchdash.tui.app import BatchDashApp
from batchdash.tui.widgets.detail import JobDetailPane
from batchdash.tui.widgets.jobs import JobTable
from batchdash.tui.widgets.qa import QAPane
from batchdash.tui.widgets.status import StatusPane
from tests.tui.conftest import make_app

#: Eighth-block glyphs: Textual's smooth scrollbar ends, and the header's sparkline.
PARTIAL_BLOCKS = set("▁▂▃▄▅▆▇")


def screen_lines(app: App[None]) -> list[str]:
    """The screen as text, one string per terminal line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def region_text(app: App[None], widget: Widget) -> list[str]:
    """The text inside `widget`'s region of the screen."""
    r = widget.region
    return [line[r.x : r.right] for line in screen_lines(app)[r.y : r.bottom]]


async def settled(app: BatchDashApp) -> None:
    """Refresh until the detail has followed the cursor (the reads after start are done)."""
    deadline = time.monotonic() + 10
    while app.last is None or app.last.detail is None:
        assert time.monotonic() < deadline, "the detail never followed the cursor"
        await app.wait_for_snapshot()


async def test_no_sparkline_glyphs_at_the_right_edge_of_the_panes(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=(140, 40)) as pilot:
        await settled(app)
        await pilot.pause()
        for pane in (app.query_one(JobTable), app.query_one(JobDetailPane)):
            assert pane.max_scroll_y > 0  # it has a scrollbar to draw
            assert not PARTIAL_BLOCKS & set("".join(region_text(app, pane)))
        await pilot.press("S")
        await app.wait_for_snapshot()
        await pilot.pause()
        qa = app.query_one(QAPane)
        assert qa.max_scroll_y > 0
        assert not PARTIAL_BLOCKS & set("".join(region_text(app, qa)))


async def test_80x24_keeps_header_lines_table_and_footer_whole(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.wait_for_snapshot()
        await pilot.pause()
        lines = screen_lines(app)
        assert lines[0].lstrip().startswith("●") and "pending" in lines[0]
        assert lines[2].lstrip().startswith("workers ") and "stopped" in lines[2]  # health
        counts, rate = app.query_one("#overview-counts"), app.query_one("#overview-rate")
        assert counts.region.right < rate.region.x  # side by side with a gap, never over
        assert rate.region.bottom <= 3 and counts.region.bottom <= 3
        footer = lines[-1]
        for key in ("? Help", "q Quit", "/ Filter", "r Retry"):
            assert key in footer
        table = app.query_one(JobTable)
        assert table.max_scroll_x == 0  # fits: no sideways scrolling, no scrollbar row
        header = region_text(app, table)[0]
        assert "ERROR" in header and "KEY" in header and "STATE" in header
        assert "1–100 of 172" in lines[-2]


class SidebarHost(App[None]):
    """The status pane alone, styled by the dashboard's stylesheet, fed only by the test."""

    CSS_PATH = Path(showcase.__file__).with_name("batchdash.tcss")

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield StatusPane(id="status-pane")
            yield Static("the rest")


async def test_the_sidebar_grows_for_seven_digit_counts(showcase_db: Path) -> None:
    with open_sync_store(showcase_db) as db:
        head = snapshot.overview(db.tx, showcase.NOW)
        queues = snapshot.queues(db.tx)
    big = {"pending": 1_234_567, "running": 12, "succeeded": 9_876_543, "failed": 7}
    app = SidebarHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(StatusPane)
        pane.show(replace(head, counts=big), queues, JobFilter())
        await pilot.pause()
        text = [line.split() for line in region_text(app, pane)]
        assert ["0", "all", "11,111,129"] in [line[:3] for line in text]
        assert ["1", "pending", "1,234,567"] in [line[:3] for line in text]
        assert ["3", "succeeded", "9,876,543"] in [line[:3] for line in text]
