"""The queue list shows each rate-limited queue's use of its limit, the jobs waiting on it,
how long they waited, and a rate lowered by a 429 (`↓`), in the few cells it has at 80×24."""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.core.db.ports import Tx
from batchdash.tui import showcase
from batchdash.tui.widgets.status import StatusPane
from tests.tui.conftest import make_app


def _limit_papers(tx: Tx) -> None:
    now = showcase.NOW
    tx.limits.set_limit("papers", "", 120, None, 10.0, now)  # 2 a second, a burst of 2
    for _ in range(5):  # 2 at once, 3 booked for later
        tx.limits.reserve("papers", "gpt-4o-mini", 100, now)


async def test_a_limited_queue_shows_its_use_and_waiting_jobs(showcase_db: Path) -> None:
    with open_sync_store(showcase_db) as db:
        db.write(_limit_papers)
    app = make_app(showcase_db)
    async with app.run_test(size=(80, 24)):
        await app.wait_for_snapshot()
        lines = str(app.query_one(StatusPane).render()).splitlines()
    papers = next(i for i, line in enumerate(lines) if "papers" in line)
    assert lines[papers + 1].strip() == "5/120rpm ⌛3"
    # The longest booked wait: the 5th request, 1.5 s behind at 2 a second after a burst of 2.
    assert lines[papers + 2].strip() == "waited ≤1.5s"
    assert "rpm" not in "".join(lines[papers + 3 :])  # other queues have no limit


async def test_a_throttled_queue_shows_its_lowered_rate(showcase_db: Path) -> None:
    with open_sync_store(showcase_db) as db:
        db.write(_limit_papers)
        db.write(lambda tx: tx.limits.note_throttled("papers", "", 30.0, showcase.NOW))
    app = make_app(showcase_db)
    async with app.run_test(size=(80, 24)):
        await app.wait_for_snapshot()
        lines = str(app.query_one(StatusPane).render()).splitlines()
    # Halved: 60 of the 120 rpm are in force, the debt of 3 booked requests stays.
    assert "  5/60rpm↓ ⌛3" in lines
