"""PostgreSQL schema upgrades on a database that already holds jobs.

v5 (migration 0005) keeps local finishes per second and local pending counts per queue;
a database made by v4 gets both rebuilt from its rows, and the triggers keep them after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.postgres.connection import _MIGRATIONS
from batchdash.core.models import Outcome
from tests.pgserver import PgServer

T0 = 1_700_000_000.0


@pytest.fixture
def v4_url(pg_server: PgServer) -> Iterator[str]:
    """A database at schema v4 with local and remote jobs in several states."""
    url = pg_server.create_database()
    later = time.time() + 3600  # waiting out a retry delay
    with psycopg.connect(url, autocommit=True) as conn:
        for script in _MIGRATIONS[:4]:
            conn.execute(script)  # type: ignore[arg-type]  # our own shipped SQL files
        conn.execute("CREATE TABLE batchdash_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO batchdash_schema VALUES (4)")
        conn.execute("INSERT INTO queues (name, created_at) VALUES ('q', 0), ('r', 0)")
        conn.execute(
            "INSERT INTO batches (id, queue, endpoint, state, created_at, updated_at) "
            "VALUES (7, 'q', '/v1/responses', 'running', 0, 0)"
        )
        conn.cursor().executemany(
            "INSERT INTO jobs (queue, key, handler, status, batch_id, run_after, finished_at, "
            "created_at, updated_at) VALUES (%s, %s, 'echo', %s, %s, %s, %s, 0, 0)",
            [
                ("q", "a", "pending", None, 0, None),
                ("q", "b", "pending", None, later, None),
                ("q", "line", "pending", 7, 0, None),  # a remote batch's line
                ("r", "c", "pending", None, 0, None),
                ("r", "d", "succeeded", None, 0, T0 + 0.25),
                ("r", "e", "failed", None, 0, T0 + 0.75),
                ("r", "f", "succeeded", None, 0, T0 + 1.5),
                ("q", "g", "succeeded", 7, 0, T0 + 1.5),  # ingested: not local throughput
                ("q", "h", "cancelled", None, 0, T0 + 1.5),  # cancelled: not throughput
            ],
        )
        conn.execute("INSERT INTO job_payloads (job_id, payload) SELECT id, '{}' FROM jobs")
    yield url
    pg_server.drop_database(url)


def test_v5_rebuilds_kept_throughput_and_local_pending_from_the_rows(v4_url: str) -> None:
    with open_sync_store(DbLocation(url=v4_url)) as s:
        pending = s.read(lambda tx: tx.stats.local_pending_by_queue(time.time()))
        assert pending == {"q": (2, 1), "r": (1, 0)}
        buckets = s.read(lambda tx: tx.stats.finished_per_bucket(T0 - 1.0, 1.0, 4))
        assert buckets == [0, 2, 1, 0]
        assert s.read(lambda tx: tx.stats.finished_per_bucket(T0 + 0.5, 1.25, 1)) == [2]
        totals = s.read(lambda tx: tx.stats.status_totals())
        assert totals == {"pending": 4, "succeeded": 3, "failed": 1, "cancelled": 1}
        # The triggers keep both from here on: two local jobs claimed and finished.
        claimed = s.write(lambda tx: tx.jobs.claim("w", "t", 5, 30.0, [], time.time()))
        assert len(claimed) == 2
        done = [Outcome(c.job_id, c.token, "succeeded", T0 + 2.2) for c in claimed]
        s.write(lambda tx: tx.jobs.finish("w", done))
        assert s.read(lambda tx: tx.stats.local_pending_by_queue(time.time())) == {"q": (1, 1)}
        buckets = s.read(lambda tx: tx.stats.finished_per_bucket(T0 - 1.0, 1.0, 4))
        assert buckets == [0, 2, 1, 2]
