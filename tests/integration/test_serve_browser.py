"""The served dashboard in a real browser: Debian's chromium, headless, over CDP.

It loads the page, sees the job counts drawn by xterm.js, saves a screenshot, and with
`--allow-actions` pauses a queue by a key press, which the event records as a `web` action.
Skipped when chromium is missing, except under CI=true (.ci/run installs it).
Set UPDATE_SCREENSHOTS=1 to write screenshots/serve-browser.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from batchdash.core.actor import os_user
from batchdash.core.db.location import parse_location
from batchdash.tui import showcase
from tests.conftest import ROOT, open_db, wait_until
from tests.integration.browser import CHROMIUM, chromium
from tests.integration.serving import serving

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytestmark = pytest.mark.skip(reason="chromium is not installed (apt-get install chromium)")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def db(any_db: str) -> str:
    """The showcase data on each back end (a SQLite file, or a PostgreSQL URL)."""
    showcase.seed(parse_location(any_db))
    return any_db


def _argv_holding(text: str) -> list[int]:
    """The pids of processes whose command line contains `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # gone meanwhile
            continue
    return found


async def test_the_browser_shows_the_job_counts(db: str, tmp_path: Path) -> None:
    # On a network address, with a token: the browser trades it for a cookie, which its
    # websocket then carries.
    token = "browser-test-token"
    with serving("--host", "0.0.0.0", "--db", db, BATCHDASH_SERVE_TOKEN=token) as served:
        async with chromium(tmp_path / "profile") as page:
            await page.open(f"{served.base}/?token={token}")
            text = await page.wait_for_text(
                "82 pending", "75 succeeded", "7 failed", "172 jobs", "READ-ONLY"
            )
            assert "1 pending     82" in text  # the status pane's counts too
            shot = tmp_path / "serve-browser.png"
            await page.screenshot(shot)
            assert await page.evaluate("location.href") == f"{served.base}/"
            # The dashboard process got the database through its environment only.
            assert _argv_holding(db) == [served.proc.pid]
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(shot, ROOT / "screenshots" / "serve-browser.png")


async def test_an_action_in_the_browser_is_recorded_as_web(db: str, tmp_path: Path) -> None:
    with serving("--db", db, "--allow-actions") as served:
        assert "actions allowed" in served.line
        async with chromium(tmp_path / "profile") as page:
            await page.open(served.url)
            await page.wait_for_text("172 jobs", "aa90-011")  # the cursor is on a batch-chat job
            assert "READ-ONLY" not in await page.screen_text()
            await page.press("p")
            await page.wait_for_text("queue batch-chat paused")
    store = open_db(db)
    try:

        def paused() -> list[str | None]:
            events = store.read(lambda tx: tx.events.list_events(None))
            return [e.detail for e in events if e.kind == "paused" and e.queue == "batch-chat"]

        wait_until(paused, timeout=10, what="the paused event")
        assert paused() == [f"by {os_user()} via web"]
    finally:
        store.close()
