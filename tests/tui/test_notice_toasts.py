"""The dashboard toasts each new notice once while it runs, and rings the bell unless told
not to; what was already true when it opened is not news."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets._toast import Toast

from batchdash.core.db import open_sync_store
from batchdash.core.liveness import this_host
from batchdash.core.models import Worker
from batchdash.tui import app as app_module
from batchdash.tui import showcase
from batchdash.tui.app import BatchDashApp
from tests.tui.conftest import SIZE


class CountingBells(BatchDashApp):
    """The dashboard, counting the bells it rings instead of ringing them."""

    CSS_PATH = str(Path(app_module.__file__).with_name("batchdash.tcss"))  # not relative to here
    bells = 0

    def bell(self) -> None:
        self.bells += 1


def _app(path: Path, *, bell: bool) -> CountingBells:
    return CountingBells(path, clock=lambda: showcase.NOW, poll_every=0, refresh=0.05, bell=bell)


def _toasts(app: BatchDashApp) -> list[str]:
    return [str(toast.render()) for toast in app.screen.query(Toast)]


def _kill_a_worker(path: Path) -> None:
    """A worker of this host whose process is gone: it is dead."""
    gone = Worker("w-gone", this_host(), 2**22 + 4321, time.time(), time.time(), 1.0, "busy")
    with open_sync_store(path) as db:
        db.write(lambda tx: tx.workers.register_worker(gone))


async def _until(pilot: Pilot[None], done: Callable[[], object], what: str) -> None:
    """Let the app run until `done()` holds (10 s at most)."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def test_a_new_notice_is_toasted_once_with_a_bell(showcase_db: Path) -> None:
    app = _app(showcase_db, bell=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _until(pilot, lambda: app.notices_seen.seen is not None, "the first look")
        assert app.notices_seen.seen  # the showcase's stale worker: the baseline
        assert _toasts(app) == [] and app.bells == 0
        _kill_a_worker(showcase_db)
        await _until(pilot, lambda: _toasts(app), "a toast")
        toasts = _toasts(app)
        await pilot.pause(0.3)  # a few more looks: still one toast, one bell
        assert _toasts(app) == toasts
        assert app.bells == 1
    assert len(toasts) == 1
    assert "worker w-gone dead" in toasts[0]
    assert f"worker w-gone on {this_host()}" in toasts[0]


async def test_no_bell_still_toasts(showcase_db: Path) -> None:
    app = _app(showcase_db, bell=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _until(pilot, lambda: app.notices_seen.seen is not None, "the first look")
        _kill_a_worker(showcase_db)
        await _until(pilot, lambda: _toasts(app), "a toast")
        assert len(_toasts(app)) == 1
        # Let the last refresh's row messages land: leaving mid-refresh races the teardown.
        await pilot.pause(0.3)
    assert app.bells == 0
