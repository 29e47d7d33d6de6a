"""PostgreSQL query plans: the claim stays an index walk under the generic plan, and the
dashboard's free-text filter reads the trigram indexes (migrations 0003, 0012) instead of the
table.

psycopg prepares a statement after five runs, and PostgreSQL may then switch to a generic
plan (one for any parameters). With `id IN (subquery)` that plan joined the whole jobs
table by a Seq Scan; `id = ANY(ARRAY(subquery))` keeps the walk of the jobs_claim index.
The test EXPLAINs the repository's own SQL text, prepared, with the generic plan forced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.ports import Tx
from batchdash.core.db.postgres.job_pages import _pg_where
from batchdash.core.db.postgres.jobs import FINISH_SQL, _finish_params, claim_sql
from batchdash.core.db.postgres.stats import LAST_LOCAL_FINISH_SQL
from batchdash.core.db.postgres.workers import EXTEND_LEASES_SQL, RELEASE_SQL
from batchdash.core.models import JobFilter, NewJob, Outcome

#: Jobs in the table when the plan is made: enough for a scan to look costly.
JOBS = 20_000


def _positional(sql: str) -> tuple[str, list[str]]:
    """`%(name)s` placeholders as `$n`, each name numbered at its first use (as psycopg does)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql), names


def _numbered(sql: str) -> str:
    """Positional `%s` placeholders as `$1`, `$2`, … in order."""
    count = iter(range(1, sql.count("%s") + 1))
    return re.sub(r"%s", lambda _: f"${next(count)}", sql)


def _generic_plan(conn: psycopg.Connection[Any], text: str, values: list[Any]) -> str:
    """The generic plan of `text` (`$n` placeholders) for these values, as text."""
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE planned AS {text}")
    marks = ", ".join(["%s"] * len(values))
    # EXECUTE's arguments are literals: a client-side cursor writes them in.
    with psycopg.ClientCursor(conn) as cur:
        cur.execute(f"EXPLAIN EXECUTE planned({marks})", values)
        return "\n".join(row[0] for row in cur.fetchall())


@pytest.fixture
def filled(pg_url: str) -> str:
    """A backlog of JOBS jobs, a quarter of them finished, and fresh statistics."""
    jobs = [NewJob(key=f"k{i}", payload={"i": i}, priority=i % 3) for i in range(JOBS)]
    with open_sync_store(DbLocation(url=pg_url)) as store:
        store.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))
        claims = store.write(lambda tx: tx.jobs.claim("w", "t", JOBS // 4, 60.0, (), 2.0))
        outcomes = [Outcome(c.job_id, "t", "succeeded", 3.0) for c in claims]
        store.write(lambda tx: tx.jobs.finish("w", outcomes))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return pg_url


@pytest.mark.parametrize("by_queue", [False, True], ids=["any", "by_queue"])
def test_the_generic_claim_plan_never_scans_jobs(filled: str, by_queue: bool) -> None:
    text, names = _positional(claim_sql(by_queue, 16))
    values = {
        "worker": "w2",
        "token": "t2",
        "lease": 60.0,
        "now": 4.0,
        "queues": ["q"],
    }
    with psycopg.connect(filled) as conn:  # one transaction, rolled back at the end
        lines = _generic_plan(conn, text, [values[n] for n in names])
        conn.rollback()
    assert "jobs_claim" in lines, lines
    assert "Seq Scan on jobs" not in lines, lines


def test_a_text_filter_reads_the_trigram_indexes_not_the_table(filled: str) -> None:
    # The count a refresh makes under `/ timeout` (count_jobs_upto), with the filter's own
    # WHERE: the ids whose key or error matches (in job_search, off the hot table), each arm a
    # bitmap scan of its trigram index. At 20k rows a scan (or a walk of job_search's key
    # with the ILIKEs as a filter) is cheaper, so both are priced out: what is tested is
    # that the indexes serve this WHERE (the partial one's predicate proven), as the
    # planner picks them at 1M.
    where, params = _pg_where(JobFilter(text="timeout"))
    with psycopg.connect(filled) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_indexscan = off")
        plan = conn.execute(
            f"EXPLAIN SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE {where} LIMIT 10001) u",
            params,
        ).fetchall()
    lines = "\n".join(row[0] for row in plan)
    assert "job_search_key_trgm" in lines and "job_search_error_trgm" in lines, lines
    assert "Seq Scan on jobs" not in lines, lines


def test_a_keyset_text_page_looks_up_job_search_from_the_page_on(filled: str) -> None:
    # The planner does not carry a page's `j.id < N` over to `s.job_id`: at 1M jobs it
    # walked job_search's key from the far end to reach page 51 of "failed + timeout"
    # (130 ms). The page's range, repeated inside the lookup, starts that walk at the page
    # (4 ms). Both lookups are priced out of bitmap scans here, as at 1M.
    flt = JobFilter(statuses=("succeeded",), text="k1")
    where, params = _pg_where(flt, ids=("<", JOBS // 2))
    with psycopg.connect(filled) as conn:
        conn.execute("SET enable_bitmapscan = off")
        plan = conn.execute(
            f"EXPLAIN SELECT j.id FROM jobs j WHERE {where} AND j.id < %s "
            "ORDER BY j.id DESC LIMIT 100",
            [*params, JOBS // 2],
        ).fetchall()
    lines = "\n".join(row[0] for row in plan)
    assert re.search(r"Index Cond: \(job_id < '?\d+", lines), lines


def test_reads_run_without_jit_compilation(pg_url: str) -> None:
    # The planner JIT-compiles a statement whose estimate passes jit_above_cost; for the
    # dashboard's short reads that compile cost more than the read (26 ms of 30 at 10M).
    from batchdash.core.db.postgres.store import PgSyncStore

    with PgSyncStore.open(DbLocation(url=pg_url)) as s:
        before = s.conn.execute("SHOW jit").fetchone()
        assert s.read(lambda tx: s.conn.execute("SHOW jit").fetchone()) == {"jit": "off"}
        assert s.conn.execute("SHOW jit").fetchone() == before  # only the read's own


def test_repeated_claims_reuse_one_generic_plan(pg_url: str) -> None:
    # Planning the claim took ~0.4 ms a time; with its limit a parameter, the server never
    # chose the generic plan (priced for 10% of the table) and planned every claim anew.
    from batchdash.core.db.postgres.store import PgSyncStore

    jobs = [NewJob(key=f"k{i}", payload={}) for i in range(200)]
    with PgSyncStore.open(DbLocation(url=pg_url)) as s:
        s.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))
        for n in range(16):  # psycopg prepares at the 6th; the server plans 5 more anew
            s.write(lambda tx, n=n: tx.jobs.claim("w", f"t{n}", 8, 60.0, (), 2.0))
        plans = s.conn.execute(
            "SELECT generic_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%WITH claimed AS%%'"
        ).fetchall()
    assert plans and plans[0]["generic_plans"] > 0, plans


def test_keyset_reads_are_planned_for_their_own_bound(filled: str) -> None:
    # A generic plan (psycopg prepares at the 6th run) cannot see how few rows a page's
    # bound leaves: it counted the rows in front of a text-filtered page 51 at 10M jobs in
    # 1.6 s, where the plan for the actual bound takes 26 ms. Keyset reads stay unprepared.
    from batchdash.core.db.ports import Page
    from batchdash.core.db.postgres.store import PgSyncStore

    flt = JobFilter(statuses=("pending",), text="k1")
    with PgSyncStore.open(DbLocation(url=filled)) as s:
        first = s.read(lambda tx: tx.jobs.list_jobs(flt, 100, order="-id"))
        for _ in range(8):
            page = Page(first[-1])
            rows = s.read(lambda tx, p=page: tx.jobs.list_jobs(flt, 100, order="-id", page=p))
            top = rows[0]
            s.read(lambda tx, t=top: tx.jobs.count_jobs_upto(flt, 1000, ahead_of=t, order="-id"))
        prepared = s.conn.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%job_search%%'"
        ).fetchall()
    assert rows and rows[0].id < first[-1].id
    assert prepared == [], prepared


def test_a_status_sorted_by_attempts_walks_its_own_index_run(filled: str) -> None:
    # At 10M jobs the first page of "pending by attempts" walked the all-jobs attempts index
    # past every other status (700 ms); the (status, attempts, id) index starts at the run.
    with psycopg.connect(filled) as conn:
        plan = conn.execute(
            "EXPLAIN SELECT j.id FROM jobs j WHERE j.status IN ('pending') "
            "ORDER BY j.attempts DESC, j.id LIMIT 100"
        ).fetchall()
    lines = "\n".join(row[0] for row in plan)
    assert "jobs_status_attempts" in lines and "Sort" not in lines, lines


@pytest.fixture
def timeouts(pg_url: str) -> str:
    """JOBS jobs, a tenth of them failed, each of those (and no other) with a timeout."""
    jobs = [NewJob(key=f"k{i}", payload={}) for i in range(JOBS)]
    with open_sync_store(DbLocation(url=pg_url)) as store:
        store.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))
        claims = store.write(lambda tx: tx.jobs.claim("w", "t", JOBS // 10, 60.0, (), 2.0))
        failed = [Outcome(c.job_id, "t", "failed", 3.0, error="timeout after 60s") for c in claims]
        store.write(lambda tx: tx.jobs.finish("w", failed))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return pg_url


def _plans_of(url: str, read: Callable[[Tx], object]) -> list[str]:
    """The plans of the statements `read` runs, as auto_explain reports them to the client."""
    from batchdash.core.db.postgres.store import PgSyncStore

    plans: list[str] = []
    with PgSyncStore.open(DbLocation(url=url)) as s:
        s.conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        s.conn.execute("LOAD 'auto_explain'")
        s.conn.execute("SET auto_explain.log_min_duration = 0")
        s.conn.execute("SET auto_explain.log_level = notice")
        s.read(read)
    return [plan for plan in plans if "job_search" in plan]


TIMEOUTS = JobFilter(statuses=("failed",), text="timeout")


def _looks_texts_up_one_by_one(plan: str) -> None:
    """`plan` tests each job's job_search row by its id, not a join of every text match."""
    assert "Index Scan using job_search_pkey on job_search s" in plan, plan
    assert "Index Cond: (job_id = j.id)" in plan, plan
    assert not re.search(r"(Bitmap Heap|Seq) Scan on job_search", plan), plan


def test_a_status_and_text_count_tests_the_status_jobs_texts_one_by_one(timeouts: str) -> None:
    # Nearly every timeout is on a failed job, which the planner cannot know: it read every
    # text match (173k at 10M jobs) and hash-joined them to the failed jobs to count 1,000
    # (80-100 ms). Walking the failed jobs and looking each one's texts up by its id stops
    # at the 1,001st match.
    [plan] = _plans_of(timeouts, lambda tx: tx.jobs.count_jobs_upto(TIMEOUTS, 100))
    _looks_texts_up_one_by_one(plan)
    assert "Hash" not in plan, plan


def test_a_status_and_text_page_tests_the_status_jobs_texts_one_by_one(timeouts: str) -> None:
    # The same for the rows of the first page and of a keyset page after it.
    from batchdash.core.db.ports import Page

    def two_pages(tx: Tx) -> object:
        first = tx.jobs.list_jobs(TIMEOUTS, 100, order="-id", with_bodies=False)
        after = Page(first[-1])
        return tx.jobs.list_jobs(TIMEOUTS, 100, order="-id", with_bodies=False, page=after)

    plans = _plans_of(timeouts, two_pages)
    assert len(plans) == 2, plans
    for plan in plans:
        _looks_texts_up_one_by_one(plan)


@pytest.mark.parametrize("statement", ["finish", "extend_leases", "release"])
def test_a_workers_held_jobs_are_looked_up_by_id_not_among_all_running(
    filled: str, statement: str
) -> None:
    # Statistics taken while none ran (as after a backlog is enqueued), then many running:
    # with a `status = 'running'` test the planner walked every running job (jobs_lease)
    # for each held one, 70 ms instead of 7 per exchange beside 2,500 running jobs.
    with open_sync_store(DbLocation(url=filled)) as store:
        store.write(lambda tx: tx.jobs.claim("other", "t9", 2_500, 60.0, (), 4.0))
    ids, tokens = [JOBS - 1, JOBS - 2], ["t9", "t9"]
    if statement == "finish":
        params = _finish_params("w", [Outcome(i, "t9", "succeeded", 5.0) for i in ids])
        text, names = _positional(FINISH_SQL)
        values = [params[name] for name in names]
    elif statement == "extend_leases":
        text, values = _numbered(EXTEND_LEASES_SQL), [60.0, ids, tokens]
    else:
        text, values = _numbered(RELEASE_SQL), [ids, tokens, "w"]
    with psycopg.connect(filled) as conn:  # one transaction, rolled back at the end
        plan = _generic_plan(conn, text, values)
        conn.rollback()
    assert "jobs_lease" not in plan, plan
    assert "Index Scan using jobs_pkey on jobs" in plan, plan


def test_the_last_finish_is_one_seek_whatever_the_statistics_say(pg_url: str) -> None:
    # Statistics from before a drain (no job finished): for `max(finished_at)` the planner
    # then read every finished job's index entry (35 ms at 200,000) instead of the last.
    jobs = [NewJob(key=f"k{i}", payload={}) for i in range(2_000)]
    with open_sync_store(DbLocation(url=pg_url)) as store:
        store.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs, 1.0, None))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE jobs")
        claims = store.write(lambda tx: tx.jobs.claim("w", "t", 2_000, 60.0, (), 2.0))
        outcomes = [Outcome(c.job_id, "t", "succeeded", 3.0 + c.job_id) for c in claims]
        store.write(lambda tx: tx.jobs.finish("w", outcomes))
        assert store.read(lambda tx: tx.stats.last_local_finish()) == 3.0 + 2_000
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {LAST_LOCAL_FINISH_SQL}").fetchall()
    plan = "\n".join(row[0] for row in rows)
    assert "Index Only Scan Backward using jobs_local_done" in plan, plan
    assert "rows=1 loops=1" in plan.split("jobs_local_done")[1].splitlines()[0], plan
