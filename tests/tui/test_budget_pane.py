"""The dashboard's queue list shows a budgeted queue's spend against its budget, and says
when the budget paused it."""

from __future__ import annotations

import time
from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.core.pricing import usd
from batchdash.tui.widgets.status import StatusPane
from tests.tui.conftest import SIZE, make_app


async def test_the_queue_list_shows_spend_against_budget_and_a_budget_pause(
    showcase_db: Path,
) -> None:
    with open_sync_store(showcase_db) as db:
        spent = {q.name: q.spend_usd for q in db.read(lambda tx: tx.queues.list_queues())}
        db.write(lambda tx: tx.queues.set_budget("chat", 25.0, time.time()))
        db.write(lambda tx: tx.queues.set_budget("papers", spent["papers"] / 2, time.time()))
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE):
        await app.wait_for_snapshot()
        text = str(app.query_one(StatusPane).render())
    lines = text.splitlines()
    chat = lines.index(next(line for line in lines if line.strip().startswith("chat")))
    assert lines[chat + 1] == f"  {usd(spent['chat'])} / $25.00"
    papers = lines.index(next(line for line in lines if "papers" in line and "batch" not in line))
    assert lines[papers].startswith("⏸ papers")
    assert lines[papers + 1] == f"  budget: {usd(spent['papers'])} / {usd(spent['papers'] / 2)}"
