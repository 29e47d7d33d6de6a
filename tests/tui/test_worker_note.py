"""The workers pane shows a worker's note (a blocked event loop) and flags its health."""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db import open_sync_store
from batchdash.tui.widgets.heartbeats import HeartbeatsTable
from tests.tui.conftest import SIZE, make_app


async def test_a_blocked_worker_is_flagged_with_its_note(showcase_db: Path) -> None:
    worker = "gpu-box-4121-a1f3"
    note = "loop blocked 12s by job 45 (arxiv-2405.01245)"
    with open_sync_store(showcase_db) as db:
        db.write(lambda c: c.workers.set_worker_note(worker, note))
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("W")
        table = app.query_one(HeartbeatsTable)
        cells = [str(cell) for cell in table.get_row(worker)]
    assert cells[2] == "blocked"
    assert cells[-1].startswith("loop blocked 12s by job 45")
