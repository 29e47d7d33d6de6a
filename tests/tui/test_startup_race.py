"""Keys pressed the moment the dashboard shows its first picture, and an exit right after:
the first pane's late activation must not pull focus back to the jobs table, and messages
landing while the app shuts down must not touch widgets that are gone (NoMatches)."""

from __future__ import annotations

from pathlib import Path

from batchdash.tui.widgets.batches import BatchesTable
from tests.tui.conftest import SIZE, make_app

#: Starts per test: the race lost about one start in four before it was fixed.
STARTS = 3


async def test_a_pane_switched_to_at_once_keeps_the_focus(showcase_db: Path) -> None:
    for _ in range(STARTS):
        app = make_app(showcase_db)
        async with app.run_test(size=SIZE) as pilot:
            await app.wait_for_snapshot()
            await pilot.press("B")
            await app.wait_for_snapshot()  # the tabs' own messages have landed by now
            assert isinstance(app.focused, BatchesTable)
            await pilot.press("j", "down", "S")  # and leave with their messages in flight
