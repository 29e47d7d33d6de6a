"""A view the database answers slowly is not read back to back: after a read of S seconds
the dashboard's own refreshes wait 3 × S (keys still read at once), and the status line
says why the picture is older than usual.

The slow read is real: another connection holds a lock on the jobs table that the
dashboard's read waits for, as it would wait for a slow plan.
"""

from __future__ import annotations

import threading
import time

import psycopg

from batchdash.core.db import parse_location
from batchdash.core.models import NewJob
from batchdash.tui import showcase
from batchdash.tui.refresh import SLOW_READ_SHOWN
from batchdash.tui.widgets.statusline import StatusLine
from tests.conftest import open_db
from tests.tui.conftest import SIZE, make_app

HELD = 1.2  # seconds the lock holds up the read (over SLOW_READ_SHOWN)


def _status(app: object) -> str:
    return str(app.query_one(StatusLine).content)  # type: ignore[attr-defined]


def _hold_jobs_lock(url: str, locked: threading.Event) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        locked.set()
        time.sleep(HELD)  # the read waits this long: that is what the test measures


async def test_after_a_slow_read_refreshes_wait_and_say_so(pg_url: str) -> None:
    where = parse_location(pg_url)
    showcase.seed(where)
    app = make_app(where, refresh=0.2, slow_read_shown=SLOW_READ_SHOWN)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        assert "read took" not in _status(app)
        locked = threading.Event()
        holder = threading.Thread(target=_hold_jobs_lock, args=(pg_url, locked))
        holder.start()
        locked.wait(10)
        await app.wait_for_snapshot()  # held up until the lock goes
        holder.join()
        assert app.last_read_seconds >= HELD * 0.9
        assert "read took 1." in _status(app) and "refreshes wait" in _status(app)
        shown = app.last.page.total if app.last else 0
        # Another process adds a job: with a 0.2 s refresh it would show within a second,
        # but the slow read holds automatic refreshes back for 3 × its time.
        with open_db(pg_url) as db:
            db.write(lambda tx: tx.jobs.enqueue("late", "noop", [NewJob("k", {})], 1.0, None))
        await pilot.pause(1.0)
        assert app.last is not None and app.last.page.total == shown
        # A key reads at once (and, being quick, ends the pause).
        await pilot.press("ctrl+r")
        deadline = time.monotonic() + 1.0  # well inside the pause (3 × 1.2 s)
        while app.last.page.total == shown and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.last.page.total == shown + 1
        assert "read took" not in _status(app)
