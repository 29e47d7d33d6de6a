"""The dashboard's actions leave an audit trail: their events say `by <user> via tui`, or
`via web` in a dashboard that `batchdash serve` started."""

from __future__ import annotations

from pathlib import Path

from batchdash.core.actor import Origin, os_user
from batchdash.tui.app import BatchDashApp
from tests.conftest import open_db
from tests.tui.conftest import SIZE, make_app
from tests.tui.test_app import _settle, filter_to, paused


def details(path: Path, kind: str) -> list[str | None]:
    with open_db(path) as db:
        events = db.read(lambda tx: tx.events.list_events(None))
    return [e.detail for e in events if e.kind == kind]


async def _act(app: BatchDashApp, path: Path) -> None:
    """Cancel one pending papers job, retry it, pause its queue."""
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "queue:papers status:pending")
        await pilot.press("c", "y")
        await _settle(app, lambda: len(details(path, "cancelled")) == 3)  # 2 in the showcase
        await filter_to(app, pilot, "queue:papers status:cancelled")
        await pilot.press("r")
        await _settle(app, lambda: details(path, "retried"))
        await pilot.press("p")
        await _settle(app, lambda: paused(path, "papers"))


async def test_the_terminal_dashboard_records_tui(showcase_db: Path) -> None:
    await _act(make_app(showcase_db), showcase_db)
    by = f"by {os_user()} via tui"
    assert details(showcase_db, "cancelled")[-1] == by
    assert details(showcase_db, "retried") == [by]
    assert details(showcase_db, "paused")[-1] == by


async def test_a_served_dashboard_records_web(showcase_db: Path) -> None:
    await _act(make_app(showcase_db, origin=Origin.WEB), showcase_db)
    assert details(showcase_db, "paused")[-1] == f"by {os_user()} via web"
