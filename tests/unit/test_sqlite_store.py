"""The SQLite back end itself: a private WAL file, migrations from old schemas, checkpoints
aside, numbered migration files shipped in the package."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from batchdash.core import queue
from batchdash.core.db import SCHEMA_VERSION, open_store, open_sync_store
from batchdash.core.db.ports import Store
from batchdash.core.db.sqlite.connection import _migrations
from batchdash.core.errors import StoreError
from batchdash.core.models import ALL_JOBS, NewJob

#: The SQLite back end itself: nothing here has a PostgreSQL counterpart.
pytestmark = pytest.mark.sqlite_only

FAST = queue.RetryPolicy(base=0.01, factor=2.0, jitter=0.0)


@pytest.fixture
async def db(db_path: Path) -> Store:
    opened = await open_store(db_path)
    yield opened  # type: ignore[misc]
    await opened.close()


async def test_database_is_private_wal_and_migrated_once(db_path: Path) -> None:
    s = open_sync_store(db_path)
    s.close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with open_sync_store(db_path) as again:
        assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_v2_results_and_payloads_move_to_their_own_tables(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.executescript("".join(_migrations()[:2]) + "PRAGMA user_version = 2;")
    raw.execute("INSERT INTO queues (name, created_at) VALUES ('q', 0)")
    raw.executemany(
        "INSERT INTO jobs (queue, key, handler, payload, status, created_at, updated_at, "
        "result) VALUES ('q', ?, 'echo', ?, ?, 0, 0, ?)",
        [
            ("done", '{"n": 1}', "succeeded", '{"answer": 42}'),
            ("todo", '{"n": 2}', "pending", None),
        ],
    )
    raw.commit()
    raw.close()
    with open_sync_store(db_path) as s:
        done, todo = s.tx.jobs.list_jobs()
        assert (done.result, todo.result) == ({"answer": 42}, None)
        assert (done.payload, todo.payload) == ({"n": 1}, {"n": 2})
        light = s.tx.jobs.list_jobs(with_bodies=False)[0]
        assert (light.payload, light.result) == (None, None)
        columns = [r["name"] for r in s.conn.execute("PRAGMA table_info(jobs)")]
        assert "result" not in columns and "payload" not in columns
        [claimed] = s.write(lambda c: c.jobs.claim("w", "t", 5, 60.0, (), time.time()))
        assert claimed.payload == {"n": 2}


def test_v13_local_pending_counts_move_into_job_counts(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.executescript("".join(_migrations()[:13]) + "PRAGMA user_version = 13;")
    raw.execute("INSERT INTO queues (name, created_at) VALUES ('q', 0), ('r', 0)")
    raw.execute(
        "INSERT INTO batches (id, queue, endpoint, state, created_at, updated_at) "
        "VALUES (7, 'q', '/v1/responses', 'running', 0, 0), (8, 'q', '/v1/responses', "
        "'submitting', 0, 0)"
    )
    later = time.time() + 3600  # waiting out a retry delay
    raw.executemany(
        "INSERT INTO jobs (queue, key, handler, status, batch_id, run_after, created_at, "
        "updated_at) VALUES (?, ?, 'echo', ?, ?, ?, 0, 0)",
        [
            ("q", "a", "pending", None, 0),
            ("q", "b", "pending", None, later),
            ("q", "line", "pending", 7, 0),  # a remote batch's line: no worker claims it
            ("r", "c", "pending", None, 0),
            ("r", "d", "succeeded", None, 0),
        ],
    )
    raw.commit()
    raw.close()
    with open_sync_store(db_path) as s:
        pending = s.read(lambda tx: tx.stats.local_pending_by_queue(time.time()))
        assert pending == {"q": (2, 1), "r": (1, 0)}
        s.conn.execute("UPDATE jobs SET batch_id = 8 WHERE key = 'a'")  # sent in a batch
        s.conn.execute("UPDATE jobs SET status = 'running' WHERE key = 'c'")  # claimed
        pending = s.read(lambda tx: tx.stats.local_pending_by_queue(time.time()))
        assert pending == {"q": (1, 1)}
        indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master")}
        assert "jobs_local_pending" not in indexes


async def test_bulk_writes_checkpoint_aside_and_keep_the_wal_short(
    db: Store, db_path: Path
) -> None:
    big = [NewJob(key=f"k{i}", payload={"text": "x" * 4000}) for i in range(1200)]
    async with db.bulk_writes():
        for start in range(0, len(big), 100):  # 12 writes of ~100 pages each
            await queue.enqueue(db, "bulk", big[start : start + 100])
    wal_bytes = Path(f"{db_path}-wal").stat().st_size
    assert wal_bytes < 6 * 100 * 4096, "the WAL kept growing: it never started over"
    with open_sync_store(db_path) as s:
        assert s.tx.jobs.count_jobs(ALL_JOBS) == len(big)
    pages = await db._call(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0])  # type: ignore[attr-defined]
    assert pages == 1000


def test_newer_schema_is_refused_with_a_clear_message(db_path: Path) -> None:
    open_sync_store(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this batchdash"):
        open_sync_store(db_path)
