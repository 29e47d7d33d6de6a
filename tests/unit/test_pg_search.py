"""PostgreSQL's job_search (migration 0012): the texts the dashboard's `/` and `key:`
filters search, kept off the jobs table, and in step with it however a job is written.

A claim and a finish rewrite a jobs row without touching its key; only its error comes and
goes (a failure sets it, a retry or the next claim clears it), and prune deletes the row.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.ports import SyncStore
from batchdash.core.models import JobFilter, NewJob, Outcome
from tests.pgserver import PgServer
from tests.unit.test_pg_migrations import old_database


@pytest.fixture
def store(pg_url: str) -> Iterator[SyncStore]:
    """A store holding jobs `doc-1` … `doc-3` in queue q."""
    with open_sync_store(DbLocation(url=pg_url)) as s:
        jobs = [NewJob(key=f"doc-{i}", payload={}) for i in (1, 2, 3)]
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))
        yield s


def _matching(s: SyncStore, flt: JobFilter) -> list[str]:
    return [j.key for j in s.read(lambda tx: tx.jobs.list_jobs(flt, limit=50, order="id"))]


def _fail(s: SyncStore, key: str, error: str) -> None:
    """Claim every runnable job, fail the one named `key` with `error`, succeed the rest."""
    claims = s.write(lambda tx: tx.jobs.claim("w", "t", 10, 60.0, (), 2.0))
    outcomes = [
        Outcome(c.job_id, "t", "pending", 3.0, error=error)
        if c.key == key
        else Outcome(c.job_id, "t", "succeeded", 3.0)
        for c in claims
    ]
    s.write(lambda tx: tx.jobs.finish("w", outcomes))


def test_an_error_is_found_while_the_job_has_it(store: SyncStore) -> None:
    _fail(store, "doc-2", "upstream TIMEOUT after 30 s")
    assert _matching(store, JobFilter(text="timeout")) == ["doc-2"]
    assert _matching(store, JobFilter(text="doc-")) == ["doc-1", "doc-2", "doc-3"]
    assert _matching(store, JobFilter(key_glob="DOC-3")) == ["doc-3"]
    # Its next attempt starts without the last error, so the filter no longer finds it.
    store.write(lambda tx: tx.jobs.claim("w", "t2", 10, 60.0, (), 1e10))
    assert _matching(store, JobFilter(text="timeout")) == []


def test_pruned_jobs_leave_no_search_rows(store: SyncStore, pg_url: str) -> None:
    ids = [j.id for j in store.read(lambda tx: tx.jobs.list_jobs(JobFilter(), limit=10))]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM jobs WHERE id = %s", (ids[0],))
        left = conn.execute("SELECT job_id FROM job_search ORDER BY job_id").fetchall()
    assert [row[0] for row in left] == sorted(ids[1:])


def test_the_upgrade_copies_the_texts_of_existing_jobs(pg_server: PgServer) -> None:
    with (
        old_database(
            pg_server,
            11,
            "INSERT INTO queues (name, created_at) VALUES ('q', 0)",
            "INSERT INTO jobs (queue, key, handler, status, error, created_at, updated_at) "
            "VALUES ('q', 'old-1', 'noop', 'failed', 'disk full', 0, 0), "
            "('q', 'old-2', 'noop', 'succeeded', NULL, 0, 0)",
        ) as url,
        open_sync_store(DbLocation(url=url)) as s,
    ):
        assert _matching(s, JobFilter(text="DISK")) == ["old-1"]
        assert _matching(s, JobFilter(text="old")) == ["old-1", "old-2"]
