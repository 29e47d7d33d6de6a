"""Fill a migrated PostgreSQL database with N realistic jobs, server-side (for benchmarks).

Made like a restore (`pg_restore`) loads a dump into the production tables: triggers off
(the count triggers and foreign-key checks), the secondary indexes dropped and built again
after the rows, the trigger-kept tables (`job_search`, `job_count_totals`, `local_finish_totals`,
`qa_totals`, `qa_success_counts`, the QA summary's of migration 0006) rebuilt from the
rows, identity sequences moved past the ids used, and VACUUM ANALYZE at the end
(statistics and the visibility map that index-only scans need).

Per job (`id` 1..N): ~94.2% succeeded, 5% failed (three kinds of error), 0.5% pending
(a quarter of them waiting out a retry delay), 0.5% running up to RUNNING_JOBS (running
jobs are the ones workers hold: their slots bound them, not the table's size), 0.2%
cancelled; three local
queues in blocks of 50,000 and a `batch` queue of 20 remote batches × 2,000 lines; finished
over the last two hours; a payload each, a result per success, two events per started
job (one for a pending one), QA verdicts of two judges with five dimensions on ~1%.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

#: Tables the load writes; their triggers are off and their secondary indexes absent.
TABLES = (
    "batches",
    "jobs",
    "job_search",
    "job_payloads",
    "job_results",
    "events",
    "batch_items",
    "qa_results",
    "qa_scores",
)
CHUNK = 1_000_000
BATCHES = 20
BATCH_LINES = 2_000
#: Running jobs at most: what 8 hosts of 4 workers with 64 slots each hold at once (this
#: fill had 0.5% of every size running, 50,000 at 10M; the status-led indexes leave running
#: jobs out since PostgreSQL migration 0014, and a page of them sorts them all).
RUNNING_JOBS = 2_048
DIMENSIONS = ("overall", "accuracy", "fluency", "terminology", "completeness")

# Every row's values are functions of its id `i` and the load's start `t0`, so the same N
# gives the same database. `%%` is a literal `%` (psycopg placeholders).
JOBS_SQL = """
INSERT INTO jobs (id, queue, key, handler, status, priority, attempts, max_attempts,
    run_after, created_at, updated_at, started_at, finished_at, worker_id, claim_token,
    lease_expires_at, error, error_kind, input_tokens, output_tokens, cost, batch_id)
SELECT i,
    CASE WHEN bid IS NOT NULL THEN 'batch'
         ELSE (ARRAY['papers', 'chat', 'summaries'])[(i / 50000) %% 3 + 1] END,
    'doc-' || lpad(i::text, 8, '0'), 'sim', st, 0,
    CASE st WHEN 'pending' THEN (CASE WHEN retry THEN 1 ELSE 0 END)
            WHEN 'failed' THEN 3 ELSE 1 END,
    3,
    CASE WHEN retry THEN t0 + 300 ELSE 0 END,
    created,
    CASE st WHEN 'pending' THEN created WHEN 'running' THEN t0 - 30 ELSE created + 100 END,
    CASE WHEN st = 'pending' THEN NULL WHEN st = 'running' THEN t0 - 30 ELSE created + 90 END,
    CASE WHEN st IN ('pending', 'running') THEN NULL ELSE created + 100 END,
    CASE WHEN st = 'pending' OR bid IS NOT NULL THEN NULL ELSE 'bench-w' || (i %% 3 + 1) END,
    CASE WHEN st = 'running' THEN 'tok-' || i END,
    CASE WHEN st = 'running' THEN t0 + 600 END,
    CASE WHEN retry THEN 'HTTP 429: rate limited'
         WHEN st = 'cancelled' THEN 'cancelled by user'
         WHEN st <> 'failed' THEN NULL
         WHEN i %% 3 = 0 THEN 'HTTP 500: server error'
         WHEN i %% 3 = 1 THEN 'timeout after 60s'
         ELSE 'HTTP 400: invalid request: ' || md5(i::text) END,
    CASE WHEN retry THEN 'http_429'
         WHEN st = 'cancelled' THEN 'cancelled'
         WHEN st <> 'failed' THEN NULL
         WHEN i %% 3 = 0 THEN 'http_500'
         WHEN i %% 3 = 1 THEN 'timeout'
         ELSE 'invalid_request' END,
    CASE WHEN st = 'succeeded' THEN 100 + i %% 50 END,
    CASE WHEN st = 'succeeded' THEN 50 + i %% 30 END,
    CASE WHEN st = 'succeeded' THEN ((100 + i %% 50) * 0.15 + (50 + i %% 30) * 0.6) / 1e6 END,
    bid
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i,
    LATERAL (SELECT extract(epoch FROM now())::float8 AS t0) c,
    LATERAL (SELECT
        CASE WHEN i %% 200 = 0 THEN 'pending'
             WHEN i %% 200 = 1 AND i <= 200 * %(running)s THEN 'running'
             WHEN i %% 503 = 7 THEN 'cancelled' WHEN i %% 19 = 0 THEN 'failed'
             ELSE 'succeeded' END AS st,
        i %% 800 = 0 AS retry,
        c.t0 - 7300 + 7200.0 * i / %(n)s AS created,
        CASE WHEN i <= %(batched)s THEN (i - 1) / %(lines)s + 1 END AS bid) s
"""

BODIES_SQL = [
    """
    INSERT INTO job_payloads (job_id, payload)
    SELECT i, '{"i": ' || i || ', "text": "lorem ipsum lorem ipsum lorem ipsum lorem ipsum"}'
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
    """,
    """
    INSERT INTO job_results (job_id, result)
    SELECT id, '{"output": "ok ' || id || '"}' FROM jobs
    WHERE id BETWEEN %(lo)s AND %(hi)s AND status = 'succeeded'
    """,
    """
    INSERT INTO events (at, kind, job_id, batch_id, queue, worker_id, detail)
    SELECT created_at, 'enqueued', id, batch_id, queue, NULL, NULL FROM jobs
    WHERE id BETWEEN %(lo)s AND %(hi)s
    UNION ALL
    SELECT coalesce(finished_at, started_at), CASE status WHEN 'running' THEN 'claimed'
        ELSE status END, id, batch_id, queue, worker_id, 'attempt ' || attempts || '/3'
    FROM jobs WHERE id BETWEEN %(lo)s AND %(hi)s AND status <> 'pending'
    """,
    """
    INSERT INTO batch_items (batch_id, custom_id, job_id, line_no, outcome, status_code,
        error_code, error_message, input_tokens, output_tokens, cost)
    SELECT batch_id, key, id, (id - 1) %% %(lines)s,
        CASE status WHEN 'succeeded' THEN 'succeeded' WHEN 'failed' THEN 'non_2xx'
                    WHEN 'cancelled' THEN 'cancelled' ELSE 'pending' END,
        CASE status WHEN 'succeeded' THEN 200 WHEN 'failed' THEN 500 END,
        CASE WHEN status = 'failed' THEN 'server_error' END, error,
        input_tokens, output_tokens, cost
    FROM jobs WHERE id BETWEEN %(lo)s AND %(hi)s AND batch_id IS NOT NULL
    """,
    # Judge one in 100 successes; a second judge on one in 500, sometimes disagreeing.
    """
    INSERT INTO qa_results (job_id, judge, overall, comment, input_tokens, output_tokens,
        cost, created_at)
    SELECT id, judge, 1 + (id * k) %% 10, 'fine', 400, 40, 0.0001, finished_at + 10
    FROM jobs, LATERAL (VALUES ('judge-a', 7), ('judge-b', 3)) AS j(judge, k)
    WHERE id BETWEEN %(lo)s AND %(hi)s AND status = 'succeeded'
      AND id %% 100 = 3 AND (judge = 'judge-a' OR id %% 500 = 3)
    """,
]

QA_SCORES_SQL = """
INSERT INTO qa_scores (result_id, dimension, score)
SELECT q.id, d, CASE WHEN d = 'overall' THEN q.overall ELSE 1 + (q.id + length(d)) %% 10 END
FROM qa_results q, unnest(%(dimensions)s::text[]) AS d
"""

REBUILD_SQL = [
    "TRUNCATE job_count_deltas, job_count_totals, local_finish_deltas, local_finish_totals",
    "INSERT INTO job_search (job_id, queue, key, error) SELECT id, queue, key, error FROM jobs",
    """
    INSERT INTO job_count_totals (queue, status, n, local_n, input_tokens, output_tokens, cost)
    SELECT queue, status, count(*), count(*) FILTER (WHERE batch_id IS NULL),
        coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cost), 0)
    FROM jobs GROUP BY queue, status
    """,
    """
    INSERT INTO local_finish_totals (second, n)
    SELECT floor(finished_at)::bigint, count(*) FROM jobs
    WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL AND finished_at IS NOT NULL
    GROUP BY 1
    """,
    """
    UPDATE qa_totals SET input_tokens = t.i, output_tokens = t.o, cost = t.c
    FROM (SELECT coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o,
                 coalesce(sum(cost), 0) AS c FROM qa_results) t
    """,
    "SELECT qa_summary_rebuild()",
    """
    INSERT INTO qa_success_counts (queue, succeeded)
    SELECT queue, n FROM job_count_totals WHERE status = 'succeeded'
    ON CONFLICT (queue) DO UPDATE SET succeeded = excluded.succeeded
    """,
]


def fill(url: str, n: int, log: Any = print) -> float:
    """Load `n` jobs into the (migrated, empty) database at `url`; returns the seconds taken."""
    start = time.perf_counter()
    batched = min(n // 10, BATCHES * BATCH_LINES)
    params = {"n": n, "batched": batched, "lines": BATCH_LINES, "running": RUNNING_JOBS}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        indexes = _drop_secondary_indexes(conn)
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        _fill_small_tables(conn, batched)
        for lo in range(1, n + 1, CHUNK):
            chunk = {**params, "lo": lo, "hi": min(n, lo + CHUNK - 1)}
            with conn.transaction():
                conn.execute(JOBS_SQL, chunk)
                for sql in BODIES_SQL:
                    conn.execute(sql, chunk)
            log(f"  {chunk['hi']:,} jobs ({time.perf_counter() - start:.0f} s)")
        conn.execute(QA_SCORES_SQL, {"dimensions": list(DIMENSIONS)})
        with conn.transaction():
            for sql in REBUILD_SQL:
                conn.execute(sql)
            _move_sequences(conn)
        loaded = time.perf_counter() - start
        for definition in indexes:
            conn.execute(definition)
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
        indexed = time.perf_counter() - start
        conn.execute("VACUUM ANALYZE")
    took = time.perf_counter() - start
    log(
        f"  filled {n:,} jobs in {took:.0f} s (rows {loaded:.0f} s, indexes "
        f"{indexed - loaded:.0f} s, VACUUM ANALYZE {took - indexed:.0f} s)"
    )
    return took


def _drop_secondary_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the indexes no constraint owns on TABLES; returns their CREATE statements."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        (list(TABLES),),
    ).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP INDEX {name}")
    return [definition for _, definition in rows]


def _fill_small_tables(conn: psycopg.Connection[Any], batched: int) -> None:
    """Queues, the remote batches the `batch` queue's jobs belong to, and three workers."""
    conn.execute(
        "INSERT INTO queues (name, created_at) SELECT q, batchdash_now() - 7300 "
        "FROM unnest(ARRAY['papers', 'chat', 'summaries', 'batch']) AS q"
    )
    conn.execute(
        "INSERT INTO batches (id, remote_id, queue, endpoint, model, state, raw_status, total, "
        "completed, failed, created_at, updated_at, completed_at, ingested_at) "
        "SELECT b, 'batch_' || md5(b::text), 'batch', '/v1/chat/completions', 'gpt-4o-mini', "
        "'succeeded', 'completed', %(lines)s, %(lines)s * 19 / 20, %(lines)s / 20, "
        "batchdash_now() - 7200, batchdash_now() - 3600, batchdash_now() - 3600, "
        "batchdash_now() - 3600 FROM generate_series(1, %(count)s) AS b",
        {"lines": BATCH_LINES, "count": batched // BATCH_LINES},
    )
    conn.execute(
        "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, heartbeat_interval, "
        "state, handler, concurrency) SELECT 'bench-w' || w, 'host-' || w, 1000 + w, "
        "batchdash_now() - 7300, batchdash_now(), 2, 'running', 'sim', 8 "
        "FROM generate_series(1, 3) AS w"
    )


def _move_sequences(conn: psycopg.Connection[Any]) -> None:
    """Move each identity sequence past the ids the load wrote explicitly."""
    for table in ("jobs", "batches", "events", "qa_results"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"greatest((SELECT max(id) FROM {table}), 1))"
        )
