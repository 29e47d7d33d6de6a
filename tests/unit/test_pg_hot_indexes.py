"""PostgreSQL migration 0014: a queue's keys are unique in job_search instead of jobs, and
running jobs stay out of the status-led indexes, so a claim and a finish write fewer index
entries. What users rely on stays: a key is enqueued once however many enqueue it at once,
sorting by key walks an index, and status views still read their index runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.ports import Page, SyncStore
from batchdash.core.db.postgres.store import PgSyncStore
from batchdash.core.models import JobFilter, NewJob, Outcome
from tests.conftest import wait_until
from tests.pgserver import PgServer
from tests.unit.test_pg_migrations import old_database

JOBS = 5_000

_R = TypeVar("_R")


@pytest.fixture
def store(pg_url: str) -> Iterator[SyncStore]:
    with open_sync_store(DbLocation(url=pg_url)) as s:
        yield s


def _keys(s: SyncStore, queue: str) -> list[str]:
    flt = JobFilter(queues=(queue,))
    return [j.key for j in s.read(lambda tx: tx.jobs.list_jobs(flt, limit=100, order="key"))]


def test_a_key_already_in_the_queue_is_skipped(store: SyncStore) -> None:
    first = [NewJob(key="a", payload={}), NewJob(key="b", payload={})]
    again = [NewJob(key="b", payload={}), NewJob(key="c", payload={}), NewJob(key="c", payload={})]
    assert store.write(lambda tx: tx.jobs.enqueue("q", "noop", first, 1.0, None)) == (2, 0)
    assert store.write(lambda tx: tx.jobs.enqueue("q", "noop", again, 1.0, None)) == (1, 2)
    # Another queue has keys of its own.
    assert store.write(lambda tx: tx.jobs.enqueue("r", "noop", first, 1.0, None)) == (2, 0)
    assert _keys(store, "q") == ["a", "b", "c"]


def test_two_enqueues_of_one_new_key_at_once_make_one_job(pg_url: str) -> None:
    # The first enqueue holds its new key uncommitted; the second, which looked before that
    # key was committed, waits on job_search's uniqueness, fails when the first commits, and
    # runs again: its second look finds the key and skips it, with no error.
    job = [NewJob(key="same", payload={"from": "second"})]
    second: list[tuple[int, int]] = []
    with (
        open_sync_store(DbLocation(url=pg_url)) as first,
        open_sync_store(DbLocation(url=pg_url)) as other,
    ):
        # The queue exists already, so the second waits on the key, not on the queue's row.
        first.write(lambda tx: tx.jobs.enqueue("q", "noop", [NewJob(key="x", payload={})], 1, None))
        with first.conn.transaction():  # type: ignore[attr-defined]
            first.tx.jobs.enqueue("q", "noop", [NewJob(key="same", payload={})], 1.0, None)  # type: ignore[attr-defined]
            racer = threading.Thread(
                target=lambda: second.append(
                    other.write(lambda tx: tx.jobs.enqueue("q", "noop", job, 1.0, None))
                )
            )
            racer.start()
            wait_until(lambda: _waiting_on_a_lock(pg_url), timeout=10)
        racer.join(10)
        assert second == [(0, 1)]
        jobs = first.read(lambda tx: tx.jobs.list_jobs(JobFilter(), limit=10, order="key"))
    assert [(j.key, j.payload) for j in jobs] == [("same", {}), ("x", {})]


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture
def filled(pg_url: str) -> str:
    """JOBS jobs, a fifth of them running, a fifth finished, and fresh statistics."""
    jobs = [NewJob(key=f"k{i:05}", payload={}) for i in range(JOBS)]
    with open_sync_store(DbLocation(url=pg_url)) as s:
        for n in range(0, JOBS, 100):  # enqueued over time, as a real backlog is
            chunk = jobs[n : n + 100]
            s.write(lambda tx, c=chunk, t=1.0 + n / 1e4: tx.jobs.enqueue("q", "noop", c, t, None))
        done = s.write(lambda tx: tx.jobs.claim("w", "t", JOBS // 5, 60.0, (), 2.0))
        outcomes = [Outcome(c.job_id, "t", "succeeded", 3.0) for c in done]
        s.write(lambda tx: tx.jobs.finish("w", outcomes))
        s.write(lambda tx: tx.jobs.claim("w", "t2", JOBS // 5, 60.0, (), 4.0))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return pg_url


def _plan(url: str, sql: str, params: tuple[object, ...] = ()) -> str:
    with psycopg.connect(url) as conn:
        return "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params).fetchall())


def test_pages_sorted_by_key_walk_the_key_index(filled: str) -> None:
    with open_sync_store(DbLocation(url=filled)) as s:
        first = s.read(lambda tx: tx.jobs.list_jobs(JobFilter(), 100, order="key"))
        after = Page(first[-1])
        second = s.read(lambda tx: tx.jobs.list_jobs(JobFilter(), 100, order="key", page=after))
    assert [j.key for j in first + second] == [f"k{i:05}" for i in range(200)]
    plan = _plan(
        filled,
        "SELECT j.id FROM jobs j JOIN job_search k ON k.job_id = j.id "
        "ORDER BY k.queue, k.key LIMIT 100",
    )
    assert "job_search_queue_key" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("status", ["pending", "succeeded"])
def test_a_settled_status_view_reads_its_index_run(filled: str, status: str) -> None:
    plan = _plan(
        filled,
        "SELECT j.id FROM jobs j WHERE j.status IN (%s) ORDER BY j.updated_at DESC, j.id DESC "
        "LIMIT 100",
        (status,),
    )
    assert "jobs_status_time" in plan and "Seq Scan" not in plan, plan


def test_the_running_view_reads_only_running_jobs(filled: str) -> None:
    # Running jobs are not in the status-led indexes; the lease index holds just them.
    plan = _plan(
        filled,
        "SELECT j.id FROM jobs j WHERE j.status IN (%s) ORDER BY j.updated_at DESC LIMIT 100",
        ("running",),
    )
    assert "jobs_lease" in plan and "Seq Scan" not in plan, plan
    with open_sync_store(DbLocation(url=filled)) as s:
        flt = JobFilter(statuses=("running",))
        rows = s.read(lambda tx: tx.jobs.list_jobs(flt, 100, order="-updated"))
    assert len(rows) == 100 and {j.status for j in rows} == {"running"}


def test_the_upgrade_keeps_keys_unique_per_queue(pg_server: PgServer) -> None:
    with (
        old_database(
            pg_server,
            13,
            "INSERT INTO queues (name, created_at) VALUES ('q', 0), ('r', 0)",
            "INSERT INTO jobs (queue, key, handler, status, created_at, updated_at) "
            "VALUES ('q', 'old', 'noop', 'succeeded', 0, 0), ('r', 'old', 'noop', 'failed', 0, 0)",
        ) as url,
        open_sync_store(DbLocation(url=url)) as s,
    ):
        again = [NewJob(key="old", payload={}), NewJob(key="new", payload={})]
        assert s.write(lambda tx: tx.jobs.enqueue("q", "noop", again, 1.0, None)) == (1, 1)
        assert _keys(s, "q") == ["new", "old"]
        assert _keys(s, "r") == ["old"]


@pytest.mark.parametrize("order", ["id", "-id", "updated", "-updated", "key", "status", "attempts"])
@pytest.mark.parametrize("statuses", [(), ("running",), ("pending", "succeeded")])
def test_no_page_order_reads_the_whole_table(
    filled: str, order: str, statuses: tuple[str, ...]
) -> None:
    # A page in any order, of all jobs or of some statuses, walks an index (or the running
    # jobs alone): a scan of jobs here is a sort of the whole table at 10M jobs. Read as a
    # refresh reads it, past psycopg's fifth run, when the statement is prepared and the
    # server may plan it once for any statuses (a plan that could use no partial index).
    flt = JobFilter(statuses=statuses)  # type: ignore[arg-type]
    with PgSyncStore.open(DbLocation(url=filled)) as s, s.conn.transaction():
        for _ in range(8):
            rows = s.tx.jobs.list_jobs(flt, 100, order=order)
        scans = s.conn.execute(
            "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'jobs'"
        ).fetchone()
    assert len(rows) == 100
    assert scans == {"seq_scan": 0}, order


def _job_search_reads(s: PgSyncStore, read: Callable[[], _R]) -> tuple[_R, int]:
    """What `read()` returns, and how often it read job_search (table or index)."""

    def scans() -> int:
        row = s.conn.execute(
            "SELECT sum(pg_stat_get_xact_numscans(r::regclass)) AS n FROM unnest("
            "ARRAY['job_search', 'job_search_pkey', 'job_search_queue_key']) AS r"
        ).fetchone()
        return int(row["n"]) if row else 0

    with s.conn.transaction():
        before = scans()  # also counts earlier transactions whose statistics wait to be sent
        return read(), scans() - before


def _keys_by_key(s: PgSyncStore, flt: JobFilter) -> list[str]:
    return [j.key for j in s.tx.jobs.list_jobs(flt, 100, order="key")]


def test_a_small_filter_sorted_by_key_sorts_its_jobs(filled: str) -> None:
    # Walking the key index passes every job of the other queues (or statuses) by id; a
    # filter whose few jobs job_counts knows exactly is cheaper to sort, without job_search
    # (at 1M jobs the planner walked the index for the 2,048 running jobs: 63 ms, not 2).
    tiny = [NewJob(key=f"t{i:02}", payload={}) for i in range(20, 0, -1)]
    small, big = JobFilter(queues=("tiny",)), JobFilter(queues=("q",))
    with PgSyncStore.open(DbLocation(url=filled)) as s:
        s.write(lambda tx: tx.jobs.enqueue("tiny", "noop", tiny, 9.0, None))
        keys, scans = _job_search_reads(s, lambda: _keys_by_key(s, small))
        assert keys == [f"t{i:02}" for i in range(1, 21)] and scans == 0
        # The rows in front of a page of them are counted the same way.
        tenth = s.read(lambda tx: tx.jobs.list_jobs(small, 1, offset=9, order="key"))[0]
        ahead, scans = _job_search_reads(
            s, lambda: s.tx.jobs.count_jobs_upto(small, 1000, ahead_of=tenth, order="key")
        )
        assert ahead == (9, True) and scans == 0
        keys, scans = _job_search_reads(s, lambda: _keys_by_key(s, big))
        assert keys == [f"k{i:05}" for i in range(100)] and scans > 0
