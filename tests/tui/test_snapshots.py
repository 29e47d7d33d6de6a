"""SVG snapshots of the main views at 120×36 (and 80×24, 200×60) on the showcase data with a
frozen clock.

Update after a deliberate change with `pytest tests/tui --snapshot-update` and review the
SVGs (they are also what screenshots/render.py publishes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from batchdash.tui.app import BatchDashApp
from tests.conftest import cli
from tests.tui.conftest import SIZE, make_app

Compare = Callable[..., bool]


def after(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait for the first snapshot, press `keys`, wait for the view to follow."""

    async def run(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BatchDashApp)
        await app.wait_for_snapshot()
        for key in keys:
            await pilot.press(key)
            await app.wait_for_snapshot()
        await pilot.pause()

    return run


class TestJobs:
    def test_overview_and_queue(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=after())

    def test_failed_filter_with_detail(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("4", "down", "down")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=run)

    def test_zoomed_detail(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("4", "down", "down", "enter")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=run)

    def test_marks_and_confirm(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("1", "space", "space", "c")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=run)

    def test_read_only(self, snap_compare: Compare, showcase_db: Path) -> None:
        app = make_app(showcase_db, read_only=True)
        assert snap_compare(app, terminal_size=SIZE, run_before=after())


class TestPanes:
    def test_batches(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=after("B"))

    def test_batch_detail(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("B", "down", "down", "enter")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=run)

    def test_qa(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=after("S"))

    def test_workers(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=after("W"))

    def test_help(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("question_mark")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=run)


class TestSizes:
    """The smallest common terminal and a large one: nothing collides, wraps or is cut."""

    def test_jobs_at_80x24(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=(80, 24), run_before=after())

    def test_failed_with_detail_at_80x24(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("4", "down", "down")
        assert snap_compare(make_app(showcase_db), terminal_size=(80, 24), run_before=run)

    def test_help_at_80x24(self, snap_compare: Compare, showcase_db: Path) -> None:
        run = after("question_mark")
        assert snap_compare(make_app(showcase_db), terminal_size=(80, 24), run_before=run)

    def test_jobs_at_200x60(self, snap_compare: Compare, showcase_db: Path) -> None:
        assert snap_compare(make_app(showcase_db), terminal_size=(200, 60), run_before=after())


class TestColours:
    """Failed jobs stay the most prominent thing on screen without colour."""

    def test_no_color(
        self, snap_compare: Compare, showcase_db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("NO_COLOR", "1")
        assert snap_compare(make_app(showcase_db), terminal_size=SIZE, run_before=after())


class TestEmpty:
    def test_empty_store_says_what_to_do_next(self, snap_compare: Compare, tmp_path: Path) -> None:
        db = tmp_path / "empty.db"
        cli("init", "--db", str(db))
        assert snap_compare(make_app(db), terminal_size=(80, 24), run_before=after())
