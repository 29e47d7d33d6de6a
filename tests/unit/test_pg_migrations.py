"""PostgreSQL schema upgrades on a database that already holds jobs.

v5 (migration 0005) keeps local finishes per second and local pending counts per queue;
a database made by v4 gets both rebuilt from its rows, and the triggers keep them after.
v6 (migration 0006) keeps the QA summary of every queue; a v5 database's verdicts are
summed into it, and a rescore after the upgrade moves it as it moves the rows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg
import pytest

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.postgres.connection import _migration
from batchdash.core.models import Outcome
from batchdash.core.qa_models import QAResult
from tests.pgserver import PgServer

T0 = 1_700_000_000.0


def _migrate_to(conn: psycopg.Connection[tuple[object, ...]], version: int) -> None:
    """Run the first `version` shipped migrations, as a batchdash of that version did."""
    for number in range(version):
        conn.execute(_migration(number))
    conn.execute("CREATE TABLE batchdash_schema (version integer NOT NULL)")
    conn.execute("INSERT INTO batchdash_schema VALUES (%s)", (version,))


@contextlib.contextmanager
def old_database(pg_server: PgServer, version: int, *statements: str) -> Iterator[str]:
    """The URL of a database at schema `version`, as that batchdash left it, holding what
    `statements` write; dropped afterwards."""
    url = pg_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            _migrate_to(conn, version)
            for statement in statements:
                conn.execute(statement)
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.fixture
def v4_url(pg_server: PgServer) -> Iterator[str]:
    """A database at schema v4 with local and remote jobs in several states."""
    url = pg_server.create_database()
    later = time.time() + 3600  # waiting out a retry delay
    with psycopg.connect(url, autocommit=True) as conn:
        _migrate_to(conn, 4)
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


def test_v6_sums_the_verdicts_of_a_v5_database_into_the_kept_qa_summary(
    pg_server: PgServer,
) -> None:
    url = pg_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            _migrate_to(conn, 5)
            conn.execute("INSERT INTO queues (name, created_at) VALUES ('q', 0)")
            conn.execute(
                "INSERT INTO jobs (id, queue, key, handler, status, created_at, updated_at) "
                "SELECT i, 'q', 'k' || i, 'echo', 'succeeded', 0, 0 FROM generate_series(1, 3) i"
            )
            conn.execute(
                "INSERT INTO qa_results (id, job_id, judge, overall, error, created_at) VALUES "
                "(1, 1, 'j1', 2.0, NULL, 0), (2, 1, 'j2', 8.0, NULL, 0), "
                "(3, 2, 'j1', 6.5, NULL, 0), (4, 3, 'j1', NULL, 'nonsense', 0)"
            )
            conn.execute(
                "INSERT INTO qa_scores (result_id, dimension, score) "
                "SELECT id, 'overall', overall FROM qa_results WHERE overall IS NOT NULL"
            )
        with open_sync_store(DbLocation(url=url)) as s:
            summary = s.read(lambda tx: tx.qa.qa_summary())
            assert (summary.results, summary.errors) == (3, 1)
            assert summary.distribution == {2: 1, 8: 1, 7: 1}
            assert [(st.judge, st.n, st.minimum, st.maximum) for st in summary.stats] == [
                ("j1", 2, 2.0, 6.5),
                ("j2", 1, 8.0, 8.0),
            ]
            assert summary.disagreements == [(1, "k1", 2.0, 8.0)]
            assert summary == s.read(lambda tx: tx.qa.qa_summary(queue="q"))
            rescored = QAResult(1, "j2", {"overall": 3.0}, None, None, None, 1, 1, 0.0, 1.0)
            s.write(lambda tx: tx.qa.save_qa_result(rescored, replace=True))
            after = s.read(lambda tx: tx.qa.qa_summary())
            assert after.disagreements == []
            assert after == s.read(lambda tx: tx.qa.qa_summary(queue="q"))
    finally:
        pg_server.drop_database(url)
