"""Store errors surface as they are (a full disk says so); Ctrl-C says what was kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batchdash.core import queue
from batchdash.core.db import open_sync_store
from batchdash.core.db.sqlite.store import SqliteStore
from batchdash.core.errors import DatabaseError
from batchdash.core.models import NewJob


@pytest.mark.sqlite_only
def test_a_full_database_reports_full_and_writes_nothing(db_path: Path) -> None:
    jobs = [NewJob(key=f"k{i}", payload={"text": "x" * 500}) for i in range(5000)]

    async def enqueue_into_a_full_disk() -> None:
        async with await SqliteStore.open(db_path) as db:
            # max_page_count caps this connection's file size: SQLite then fails exactly
            # as on a full disk (SQLITE_FULL) and has already rolled back by itself.
            pages = await db._call(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
            await db._call(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 20}"))
            await queue.enqueue(db, "papers", jobs, handler="sim")

    with pytest.raises(DatabaseError, match="database or disk is full"):
        asyncio.run(enqueue_into_a_full_disk())
    with open_sync_store(db_path) as s:
        assert s.tx.jobs.list_jobs() == []
        assert s.tx.events.list_events(None) == []


def test_the_interrupt_message_says_what_was_committed() -> None:
    from batchdash.tui.cli.queue import interrupted_message

    assert interrupted_message(None, "papers") == "interrupted: nothing enqueued"
    assert interrupted_message(5000, "papers") == (
        "interrupted: 5000 jobs were enqueued into 'papers' before the interrupt"
    )
