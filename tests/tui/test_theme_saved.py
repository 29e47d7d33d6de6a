"""A theme picked in the command palette is saved to the config file and used next time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from batchdash.core import config
from batchdash.tui.app import BatchDashApp
from tests.tui.conftest import SIZE, make_app


async def pick(app: BatchDashApp, pilot: Pilot[None], query: str) -> None:
    """Type `query` into the open palette and run the first command offered."""
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*query)
    deadline = time.monotonic() + 10
    while not app.screen.query_one(CommandList).option_count and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.press("down", "enter")
    await pilot.pause()


async def test_the_theme_picked_in_the_palette_is_saved_and_used_next_time(
    showcase_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text('# mine\nprices = "p.json"\n')
    monkeypatch.setenv("BATCHDASH_CONFIG", str(settings))
    config.file_settings.cache_clear()
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("ctrl+p")
        await pick(app, pilot, "theme")
        await pick(app, pilot, "nord")
        assert app.theme == "nord"
    assert settings.read_text() == 'theme = "nord"\n# mine\nprices = "p.json"\n'

    app = make_app(showcase_db)
    app.start_theme = config.file_settings().theme
    async with app.run_test(size=SIZE):
        await app.wait_for_snapshot()
        assert app.theme == "nord"
    config.file_settings.cache_clear()
