"""SVG snapshots of the jobs view as a 16-colour terminal shows it, at 80×24: failed,
pending and running rows side by side, so a reviewer sees which ANSI colours each status
gets (failed must stand out most).

On a 16-colour terminal the dashboard sets Textual's `ansi_color` (themes.py,
`keep_ansi_colours_on_16_colour_terminals`), so the statuses' ANSI colours reach the
terminal as they are instead of through the theme's truecolor. A headless app never detects
that (its picture must not depend on the tester's TERM), so these tests give the same
setting the way themes.py does (`app.ansi_color = True`); the snapshot renders the ANSI
colours through its terminal palette, and the theme's own colours stay truecolor. The
escape codes a real terminal gets are checked in tests/integration/test_terminal_colours.py
(tmux, TERM=xterm).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from batchdash.tui.app import BatchDashApp
from tests.tui.conftest import make_app
from tests.tui.test_app import filter_to

Compare = Callable[..., bool]
SIZE = (80, 24)
#: Ten showcase jobs, newest first: pending 50–48, running 47–45, retrying 44–43 (pending
#: after an error), failed 42–41.
MIXED = "key:arxiv-2405.0124*"


def mixed_rows(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Filter to the mixed rows, then press `keys` (each followed by a fresh snapshot)."""

    async def run(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BatchDashApp)
        await app.wait_for_snapshot()
        await filter_to(app, pilot, MIXED)
        for key in keys:
            await pilot.press(key)
            await app.wait_for_snapshot()
        await pilot.pause()

    return run


def app_in_16_colours(db: Path) -> BatchDashApp:
    """The dashboard as it runs on a 16-colour terminal."""
    app = make_app(db)
    app.ansi_color = True
    return app


def test_jobs_in_16_colours(snap_compare: Compare, showcase_db: Path) -> None:
    app = app_in_16_colours(showcase_db)
    assert snap_compare(app, terminal_size=SIZE, run_before=mixed_rows())


def test_a_failed_job_selected_in_16_colours(snap_compare: Compare, showcase_db: Path) -> None:
    app = app_in_16_colours(showcase_db)
    assert snap_compare(app, terminal_size=SIZE, run_before=mixed_rows("G"))
