"""The one module that speaks SQL: schema, migrations, transactions and queries.

Design:
- One SQLite file in WAL mode with `synchronous=NORMAL`, a busy timeout, and a retry with
  jitter on `SQLITE_BUSY` around every write transaction.
- Every write is a plain function taking a `sqlite3.Connection` (`_tx_*`), run whole inside
  `BEGIN IMMEDIATE … COMMIT`. `Store` (async, aiosqlite) runs each such function in
  aiosqlite's own thread in a single hop, so a transaction never interleaves with other
  coroutines and costs one thread switch instead of one per statement. `SyncStore` runs
  the same functions directly, for the fast read-only `--once` path and for tools.
- Job counts per (queue, status), with token and cost sums, live in `job_counts`,
  maintained by triggers in the same transaction as the change, so the dashboard reads
  them without scanning a million rows.
- Every state change writes its `events` row in the same transaction.
- A job's payload and result live in `job_payloads` and `job_results`, not in its row: a
  status change then rewrites a ~150-byte row instead of one carrying kilobytes of text.
- Bulk writers (result ingestion) checkpoint the WAL on a second connection and thread
  (`Store.bulk_writes`), so the copy and its syncs overlap the next transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.config import db_path_setting
from batchdash.core.models import (
    Batch,
    BatchItem,
    Claim,
    Event,
    Job,
    JobFilter,
    JobStatus,
    NewJob,
    QAResult,
    QAStat,
    QASummary,
    QueueInfo,
    Worker,
    dumps,
)

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

#: The filter that selects every job.
ALL_JOBS = JobFilter()

#: Milliseconds SQLite itself waits on a lock before reporting SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000
#: Seconds our own retry loop keeps retrying a busy write transaction on top of that.
BUSY_RETRY_SECONDS = 60.0


class StoreError(Exception):
    """A store problem worth a one-line message to the user (bad path, newer schema…)."""


class NotFoundError(StoreError):
    """An id, queue or batch named by the user does not exist."""


class MissingDatabaseError(NotFoundError):
    """A command that only reads or changes existing data was pointed at no database."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database at {path} — run `batchdash init` or `batchdash demo`")
        self.path = path


def require_database(path: Path) -> None:
    """Raise MissingDatabaseError unless `path` exists (read paths never create one)."""
    if not path.exists():
        raise MissingDatabaseError(path)


# --------------------------------------------------------------------------- schema

_MIGRATIONS: list[str] = [
    # v1: the whole model; later issues add columns through new entries, never edits.
    """
    CREATE TABLE queues (
        name        TEXT PRIMARY KEY,
        paused      INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,
        qa_rubric   TEXT
    );

    CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY,
        queue            TEXT NOT NULL REFERENCES queues(name),
        key              TEXT NOT NULL,
        handler          TEXT NOT NULL,
        payload          TEXT NOT NULL,
        status           TEXT NOT NULL,
        priority         INTEGER NOT NULL DEFAULT 0,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL DEFAULT 3,
        run_after        REAL NOT NULL DEFAULT 0,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        started_at       REAL,
        finished_at      REAL,
        worker_id        TEXT,
        claim_token      TEXT,
        lease_expires_at REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result           TEXT,
        error            TEXT,
        error_kind       TEXT,
        input_tokens     INTEGER,
        output_tokens    INTEGER,
        cost             REAL,
        batch_id         INTEGER REFERENCES batches(id),
        UNIQUE (queue, key)
    );
    -- What a worker claims next: local pending jobs in priority order.
    CREATE INDEX jobs_claim ON jobs (priority DESC, run_after, id)
        WHERE status = 'pending' AND batch_id IS NULL;
    -- One page of jobs by status (and queue) and time, newest first.
    CREATE INDEX jobs_status_time ON jobs (status, updated_at);
    CREATE INDEX jobs_queue_status_time ON jobs (queue, status, updated_at);
    -- Running jobs by lease expiry, for rescue.
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'running';
    -- Throughput over the last minutes.
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
    CREATE INDEX jobs_worker ON jobs (worker_id) WHERE worker_id IS NOT NULL;

    CREATE TABLE job_counts (
        queue         TEXT NOT NULL,
        status        TEXT NOT NULL,
        n             INTEGER NOT NULL DEFAULT 0,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost          REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (queue, status)
    ) WITHOUT ROWID;

    CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_counts (queue, status, n, input_tokens, output_tokens, cost)
        VALUES (new.queue, new.status, 1, coalesce(new.input_tokens, 0),
                coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
        ON CONFLICT (queue, status) DO UPDATE SET
            n = n + 1,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cost = cost + excluded.cost;
    END;
    CREATE TRIGGER jobs_count_update
    AFTER UPDATE OF status, input_tokens, output_tokens, cost ON jobs BEGIN
        UPDATE job_counts SET
            n = n - 1,
            input_tokens = input_tokens - coalesce(old.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0),
            cost = cost - coalesce(old.cost, 0)
        WHERE queue = old.queue AND status = old.status;
        INSERT INTO job_counts (queue, status, n, input_tokens, output_tokens, cost)
        VALUES (new.queue, new.status, 1, coalesce(new.input_tokens, 0),
                coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
        ON CONFLICT (queue, status) DO UPDATE SET
            n = n + 1,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cost = cost + excluded.cost;
    END;
    CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET
            n = n - 1,
            input_tokens = input_tokens - coalesce(old.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0),
            cost = cost - coalesce(old.cost, 0)
        WHERE queue = old.queue AND status = old.status;
    END;

    CREATE TABLE events (
        id        INTEGER PRIMARY KEY,
        at        REAL NOT NULL,
        kind      TEXT NOT NULL,
        job_id    INTEGER,
        batch_id  INTEGER,
        queue     TEXT,
        worker_id TEXT,
        detail    TEXT
    );
    CREATE INDEX events_job ON events (job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX events_batch ON events (batch_id) WHERE batch_id IS NOT NULL;

    CREATE TABLE workers (
        id                 TEXT PRIMARY KEY,
        host               TEXT NOT NULL,
        pid                INTEGER NOT NULL,
        started_at         REAL NOT NULL,
        heartbeat_at       REAL NOT NULL,
        heartbeat_interval REAL NOT NULL,
        state              TEXT NOT NULL,
        queues             TEXT NOT NULL DEFAULT '[]',
        handler            TEXT NOT NULL DEFAULT '',
        concurrency        INTEGER NOT NULL DEFAULT 1,
        current_jobs       TEXT NOT NULL DEFAULT '[]',
        done               INTEGER NOT NULL DEFAULT 0,
        failed             INTEGER NOT NULL DEFAULT 0,
        stopped_at         REAL
    );
    CREATE INDEX workers_heartbeat ON workers (heartbeat_at);

    CREATE TABLE batches (
        id               INTEGER PRIMARY KEY,
        provider         TEXT NOT NULL DEFAULT 'openai',
        remote_id        TEXT UNIQUE,
        submit_key       TEXT UNIQUE,
        queue            TEXT NOT NULL,
        endpoint         TEXT NOT NULL,
        model            TEXT,
        input_path       TEXT,
        input_file_id    TEXT,
        output_file_id   TEXT,
        error_file_id    TEXT,
        raw_status       TEXT,
        state            TEXT NOT NULL,
        total            INTEGER NOT NULL DEFAULT 0,
        completed        INTEGER NOT NULL DEFAULT 0,
        failed           INTEGER NOT NULL DEFAULT 0,
        errors           TEXT,
        metadata         TEXT,
        parent_id        INTEGER REFERENCES batches(id),
        shard_index      INTEGER,
        shard_count      INTEGER,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        remote_created_at REAL,
        in_progress_at   REAL,
        expires_at       REAL,
        finalizing_at    REAL,
        completed_at     REAL,
        failed_at        REAL,
        expired_at       REAL,
        cancelling_at    REAL,
        cancelled_at     REAL,
        input_tokens     INTEGER NOT NULL DEFAULT 0,
        output_tokens    INTEGER NOT NULL DEFAULT 0,
        cost             REAL NOT NULL DEFAULT 0,
        poll_error       TEXT,
        polled_at        REAL,
        next_poll_at     REAL,
        poll_failures    INTEGER NOT NULL DEFAULT 0,
        ingested_at      REAL
    );
    CREATE INDEX batches_active ON batches (next_poll_at)
        WHERE state IN ('submitting', 'validating', 'running', 'finalizing', 'cancelling',
                        'unknown');
    CREATE INDEX batches_created ON batches (created_at);

    CREATE TABLE batch_items (
        batch_id      INTEGER NOT NULL REFERENCES batches(id),
        custom_id     TEXT NOT NULL,
        job_id        INTEGER REFERENCES jobs(id),
        line_no       INTEGER,
        outcome       TEXT NOT NULL DEFAULT 'pending',
        status_code   INTEGER,
        error_code    TEXT,
        error_message TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        cost          REAL,
        PRIMARY KEY (batch_id, custom_id)
    ) WITHOUT ROWID;
    CREATE INDEX batch_items_outcome ON batch_items (batch_id, outcome);

    CREATE TABLE qa_results (
        id            INTEGER PRIMARY KEY,
        job_id        INTEGER NOT NULL REFERENCES jobs(id),
        judge         TEXT NOT NULL,
        overall       REAL,
        comment       TEXT,
        error         TEXT,
        raw           TEXT,
        input_tokens  INTEGER,
        output_tokens INTEGER,
        cost          REAL,
        batch_id      INTEGER REFERENCES batches(id),
        created_at    REAL NOT NULL,
        UNIQUE (job_id, judge)
    );
    CREATE INDEX qa_results_overall ON qa_results (overall) WHERE overall IS NOT NULL;

    CREATE TABLE qa_scores (
        result_id INTEGER NOT NULL REFERENCES qa_results(id) ON DELETE CASCADE,
        dimension TEXT NOT NULL,
        score     REAL NOT NULL,
        PRIMARY KEY (result_id, dimension)
    ) WITHOUT ROWID;
    """,
    # v2: who is submitting a batch right now, so `reconcile` never races a live submit.
    """
    CREATE TABLE batch_submit_leases (
        batch_id   INTEGER PRIMARY KEY REFERENCES batches(id),
        owner      TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # v3: results live beside the jobs, not in them. Finishing a job then rewrites a small
    # row instead of growing it by its ~2 KB result next to its payload (batch ingestion
    # wrote and checkpointed every page twice). Rows go in arrival order (own rowid), so
    # results that arrive in random job order still append to the table.
    """
    CREATE TABLE job_results (
        id     INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
        result TEXT NOT NULL
    );
    INSERT INTO job_results (job_id, result)
        SELECT id, result FROM jobs WHERE result IS NOT NULL ORDER BY id;
    ALTER TABLE jobs DROP COLUMN result;
    """,
    # v4: payloads move out of the job rows too. A job row shrinks from ~1.5 KB (a chat
    # request) to ~150 bytes, so the status changes of claims, completions and batch
    # ingestion rewrite ten times fewer pages (50k ingested results: 3.5x faster update).
    """
    CREATE TABLE job_payloads (
        job_id  INTEGER PRIMARY KEY REFERENCES jobs(id),
        payload TEXT NOT NULL
    );
    INSERT INTO job_payloads (job_id, payload) SELECT id, payload FROM jobs ORDER BY id;
    ALTER TABLE jobs DROP COLUMN payload;
    """,
    # v5: the dashboard's "most attempts" order walks an index instead of sorting every
    # job (170 ms per refresh at a million jobs); a claim pays one more index update.
    """
    CREATE INDEX jobs_attempts ON jobs (attempts DESC, id);
    """,
    # v6: a per-job attempt timeout in seconds (NULL: the worker's --job-timeout, if any).
    """
    ALTER TABLE jobs ADD COLUMN timeout REAL;
    """,
    # v7: batch detail lists a batch's items in line order (not custom_id text order)
    # without sorting all of its lines at every refresh.
    """
    CREATE INDEX batch_items_line ON batch_items (batch_id, line_no);
    """,
    # v8: a poll cycle claims each batch it works on: owner and expiry of its poll lease,
    # taken and released by compare-and-set UPDATEs, so two pollers never work on one batch.
    """
    ALTER TABLE batches ADD COLUMN poll_owner TEXT;
    ALTER TABLE batches ADD COLUMN poll_lease_until REAL;
    """,
    # v9: a batch remembers the endpoint it was submitted to (the base URL, never the key),
    # and since when it cannot be reached there (a refused call, or failures in a row).
    """
    ALTER TABLE batches ADD COLUMN base_url TEXT;
    ALTER TABLE batches ADD COLUMN unreachable_since REAL;
    """,
    # v10: successes recorded by QA-sampling workers, numbered per queue, so `--qa-every N`
    # judges every Nth success of the queue across all workers and hosts.
    """
    CREATE TABLE qa_success_counts (
        queue     TEXT PRIMARY KEY REFERENCES queues(name),
        succeeded INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # v11: throughput counts only what local workers finished (not cancels, not remote-batch
    # ingests), read from an index of just those jobs; it replaces `jobs_finished`, so a
    # finish still updates one index. The ETA needs local pending jobs per queue (paused or
    # unserved queues have none claimable): a small index answers that without lookups.
    # QA spend is kept in a one-row total by triggers, so the header never sums verdicts.
    """
    DROP INDEX jobs_finished;
    CREATE INDEX jobs_local_done ON jobs (finished_at)
        WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL;
    CREATE INDEX jobs_local_pending ON jobs (queue, run_after)
        WHERE status = 'pending' AND batch_id IS NULL;

    CREATE TABLE qa_totals (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost          REAL NOT NULL DEFAULT 0
    );
    INSERT INTO qa_totals (id, input_tokens, output_tokens, cost)
        SELECT 1, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
               coalesce(sum(cost), 0) FROM qa_results;
    CREATE TRIGGER qa_totals_insert AFTER INSERT ON qa_results BEGIN
        UPDATE qa_totals SET
            input_tokens = input_tokens + coalesce(new.input_tokens, 0),
            output_tokens = output_tokens + coalesce(new.output_tokens, 0),
            cost = cost + coalesce(new.cost, 0);
    END;
    CREATE TRIGGER qa_totals_update
    AFTER UPDATE OF input_tokens, output_tokens, cost ON qa_results BEGIN
        UPDATE qa_totals SET
            input_tokens = input_tokens - coalesce(old.input_tokens, 0)
                + coalesce(new.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0)
                + coalesce(new.output_tokens, 0),
            cost = cost - coalesce(old.cost, 0) + coalesce(new.cost, 0);
    END;
    CREATE TRIGGER qa_totals_delete AFTER DELETE ON qa_results BEGIN
        UPDATE qa_totals SET
            input_tokens = input_tokens - coalesce(old.input_tokens, 0),
            output_tokens = output_tokens - coalesce(old.output_tokens, 0),
            cost = cost - coalesce(old.cost, 0);
    END;
    """,
    # v12: what a worker wants seen beside its state ("loop blocked 12s by job 42").
    """
    ALTER TABLE workers ADD COLUMN note TEXT;
    """,
]

SCHEMA_VERSION = len(_MIGRATIONS)


# --------------------------------------------------------------------------- connections


def default_db_path() -> Path:
    """The database unless `--db` says otherwise: BATCHDASH_DB, config file, XDG data dir."""
    chosen = db_path_setting()
    if chosen is not None:
        return chosen
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "batchdash" / "batchdash.db"


def _create_private(path: Path) -> None:
    """Create an empty DB file readable only by its owner (WAL/SHM files inherit this)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def connect_sync(path: Path, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """Open `path` with batchdash's pragmas; autocommit mode (we issue BEGIN ourselves).

    Only `create=True` (and not read-only) makes the file and its directories; otherwise a
    missing database is a MissingDatabaseError, never an empty new one.
    """
    if readonly or not create:
        require_database(path)
        # The URI mode keeps SQLite itself from creating the file if it vanished meanwhile.
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        _create_private(path)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    # Switching a new file to WAL needs a lock another process may hold for a moment (two
    # workers started together both create the database); SQLite may refuse at once.
    try:
        _with_busy_retry_sync(partial(_configure, conn, readonly=readonly))
    except BaseException:
        conn.close()
        raise
    return conn


def _configure(conn: sqlite3.Connection, *, readonly: bool) -> None:
    """Apply pragmas; WAL lets readers (the dashboard) run beside writers (workers)."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION, each step in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is newer than this batchdash (v{SCHEMA_VERSION}); "
            "upgrade batchdash"
        )
    for number in range(version, SCHEMA_VERSION):
        script = _MIGRATIONS[number]
        _with_busy_retry_sync(partial(_apply_migration, conn, number + 1, script))


def _apply_migration(conn: sqlite3.Connection, version: int, script: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
            conn.execute("ROLLBACK")
            return
        for statement in _split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _backoff(attempt: int) -> float:
    """Jittered exponential delay so competing writers do not retry in lockstep."""
    return float(min(1.0, 0.005 * 2**attempt) * (0.5 + random.random()))


def _with_busy_retry_sync(fn: Callable[[], T]) -> T:
    deadline = time.monotonic() + BUSY_RETRY_SECONDS
    attempt = 0
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_backoff(attempt))
            attempt += 1


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` inside BEGIN IMMEDIATE … COMMIT (rolled back on any error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return result


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is still open: SQLite has already rolled back after some errors
    (SQLITE_FULL, SQLITE_IOERR), and a second ROLLBACK would hide the real error behind
    "cannot rollback - no transaction is active"."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


# --------------------------------------------------------------------------- row mapping


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _build(cls: type[T], row: sqlite3.Row, **overrides: Any) -> T:
    """A dataclass from a row: columns named like its fields, decoded ones overridden.

    Columns the dataclass does not know (added by later migrations) are ignored.
    """
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    # sqlite3.Row iterates over values, not names: keys() is needed here.
    data = {key: row[key] for key in row.keys() if key in names}  # noqa: SIM118
    data.update(overrides)
    return cls(**data)


#: Jobs (alias `j`) with their payload and result, which live in their own tables.
_JOBS_WITH_BODIES = (
    "SELECT j.*, p.payload, r.result FROM {jobs} "
    "LEFT JOIN job_payloads p ON p.job_id = j.id LEFT JOIN job_results r ON r.job_id = j.id"
)
#: The same rows without payload and result, for lists that never show them (no reads of
#: two ~2 KB texts per row, no decoding), and with the error cut to LIST_ERROR_CHARS.
_JOBS_WITHOUT_BODIES = "SELECT {columns}, NULL AS payload, NULL AS result FROM {jobs}"

#: Characters of each job's error a light list page reads: a page shows one line of it, and
#: a multi-megabyte error would otherwise be copied out on every refresh.
LIST_ERROR_CHARS = 1000


def _select_jobs(conn: sqlite3.Connection, with_bodies: bool, jobs: str = "jobs j") -> str:
    """The SELECT … FROM part of a job query; `jobs` may add an indexing clause."""
    if with_bodies:
        return _JOBS_WITH_BODIES.format(jobs=jobs)
    return _JOBS_WITHOUT_BODIES.format(columns=_cut_columns(conn, LIST_ERROR_CHARS), jobs=jobs)


def _cut_columns(conn: sqlite3.Connection, chars: int) -> str:
    """Every column of `jobs j` (as migrated so far), the error cut to `chars` characters."""
    names = [row[1] for row in conn.execute("PRAGMA table_info(jobs)")]
    cut = f"substr(j.error, 1, {int(chars)}) AS error"
    return ", ".join(cut if name == "error" else f"j.{name}" for name in names)


def _job(row: sqlite3.Row) -> Job:
    return _build(
        Job,
        row,
        payload=_loads(row["payload"]),
        result=_loads(row["result"]),
        cancel_requested=bool(row["cancel_requested"]),
    )


def _worker(row: sqlite3.Row) -> Worker:
    return _build(
        Worker,
        row,
        queues=json.loads(row["queues"]),
        current_jobs=json.loads(row["current_jobs"]),
    )


def _event(row: sqlite3.Row) -> Event:
    return _build(Event, row)


# --------------------------------------------------------------------------- filters


def _glob_to_like(pattern: str) -> str:
    """Translate a `key:abc*` wildcard into a LIKE pattern (escape char is backslash)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _where(flt: JobFilter) -> tuple[str, list[Any]]:
    """Build a parameterized WHERE clause for a job filter (table alias `j`)."""
    clauses: list[str] = []
    params: list[Any] = []

    def any_of(column: str, values: Sequence[Any]) -> None:
        clauses.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)

    if flt.statuses:
        any_of("j.status", flt.statuses)
    if flt.queues:
        any_of("j.queue", flt.queues)
    if flt.ids:
        any_of("j.id", flt.ids)
    if flt.key_glob:
        clauses.append("j.key LIKE ? ESCAPE '\\'")
        params.append(_glob_to_like(flt.key_glob))
    if flt.batch_id is not None:
        clauses.append("j.batch_id = ?")
        params.append(flt.batch_id)
    if flt.worker_id:
        clauses.append("j.worker_id = ?")
        params.append(flt.worker_id)
    if flt.text:
        clauses.append("(j.key LIKE ? ESCAPE '\\' OR j.error LIKE ? ESCAPE '\\')")
        like = f"%{_glob_to_like(flt.text)}%"
        params.extend([like, like])
    if flt.score_below is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM qa_results q WHERE q.job_id = j.id AND q.overall < ?)"
        )
        params.append(flt.score_below)
    if flt.score_above is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM qa_results q WHERE q.job_id = j.id AND q.overall > ?)"
        )
        params.append(flt.score_above)
    sql = " AND ".join(clauses) if clauses else "1"
    return sql, params


# --------------------------------------------------------------------------- queue writes


def _event_rows(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert (at, kind, job_id, batch_id, queue, worker_id, detail) event rows."""
    conn.executemany(
        "INSERT INTO events (at, kind, job_id, batch_id, queue, worker_id, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def ensure_queue(conn: sqlite3.Connection, name: str, now: float) -> None:
    """Create the queue if it does not exist yet."""
    conn.execute(
        "INSERT INTO queues (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, now),
    )


def enqueue(
    conn: sqlite3.Connection,
    queue: str,
    handler: str,
    jobs: Sequence[NewJob],
    now: float,
    batch_id: int | None,
) -> tuple[int, int]:
    """Insert jobs, skipping keys already in the queue; returns (inserted, skipped)."""
    ensure_queue(conn, queue, now)
    rows = [(j.key, dumps(j.payload), j.priority, 0, j.max_attempts) for j in jobs]
    first = _insert_jobs(conn, queue, handler, rows, now, batch_id)
    # Skipped keys left their ids unused, so these updates touch new jobs only.
    conn.executemany(
        "UPDATE jobs SET timeout = ? WHERE id = ?",
        ((j.timeout, job_id) for job_id, j in enumerate(jobs, first) if j.timeout is not None),
    )
    inserted = conn.execute(
        "INSERT INTO events (at, kind, job_id, batch_id, queue) "
        "SELECT ?, 'enqueued', id, batch_id, queue FROM jobs WHERE id >= ?",
        (now, first),
    ).rowcount
    return inserted, len(jobs) - inserted


#: A job to insert: (key, payload JSON, priority, attempts, max_attempts).
JobRow = tuple[str, str, int, int, int]


def _insert_jobs(
    conn: sqlite3.Connection,
    queue: str,
    handler: str,
    rows: Iterable[JobRow],
    now: float,
    batch_id: int | None,
) -> int:
    """Insert pending jobs and their payloads, skipping keys the queue already has.

    Returns the first id given out: the new jobs are exactly those with id >= it. Ids
    are chosen here, after the current maximum (stable inside this IMMEDIATE
    transaction), so each payload goes in under its job's id by one executemany instead
    of a lookup per job. A skipped key leaves its id unused.
    """
    first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM jobs").fetchone()[0])
    numbered = list(enumerate(rows, first))
    conn.executemany(
        "INSERT INTO jobs (id, queue, key, handler, status, priority, attempts, "
        "max_attempts, run_after, created_at, updated_at, batch_id) "
        "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (queue, key) DO NOTHING",
        (
            (job_id, queue, key, handler, priority, attempts, max_attempts, now, now, batch_id)
            for job_id, (key, _, priority, attempts, max_attempts) in numbered
        ),
    )
    conn.executemany(
        "INSERT INTO job_payloads (job_id, payload) "
        "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)",
        ((job_id, row[1]) for job_id, row in numbered),
    )
    return first


def _queue_exclusion() -> str:
    return "j.queue NOT IN (SELECT name FROM queues WHERE paused = 1)"


def claim(
    conn: sqlite3.Connection,
    worker_id: str,
    token: str,
    limit: int,
    lease_seconds: float,
    queues: Sequence[str],
    now: float,
) -> list[Claim]:
    """Claim up to `limit` runnable jobs in one UPDATE … RETURNING statement.

    A new attempt starts without the last one's error: a job waiting for its retry still
    shows why it failed, a running one does not (the timeline keeps every error).

    INDEXED BY pins the partial claim index: without statistics the planner prefers the
    (status, updated_at) index and sorts every pending job on each claim.
    """
    queue_clause = ""
    params: list[Any] = [worker_id, token, now + lease_seconds, now, now, now]
    if queues:
        queue_clause = f"AND j.queue IN ({','.join('?' * len(queues))})"
        params.extend(queues)
    params.append(limit)
    rows = conn.execute(
        f"""
        UPDATE jobs SET status = 'running', attempts = attempts + 1, worker_id = ?,
            claim_token = ?, lease_expires_at = ?, started_at = ?, finished_at = NULL,
            updated_at = ?, error = NULL, error_kind = NULL
        WHERE id IN (
            SELECT j.id FROM jobs j INDEXED BY jobs_claim
            WHERE j.status = 'pending' AND j.batch_id IS NULL AND j.run_after <= ?
              AND {_queue_exclusion()} {queue_clause}
            ORDER BY j.priority DESC, j.run_after, j.id
            LIMIT ?)
        RETURNING id, queue, key, handler, attempts, max_attempts, priority, run_after, timeout
        """,
        params,
    ).fetchall()
    payloads = _payloads(conn, [r["id"] for r in rows])
    # RETURNING order is unspecified: restore the claim order for the worker.
    rows.sort(key=lambda r: (-r["priority"], r["run_after"], r["id"]))
    _event_rows(
        conn,
        (
            (
                now,
                "claimed",
                r["id"],
                None,
                r["queue"],
                worker_id,
                f"attempt {r['attempts']}/{r['max_attempts']}",
            )
            for r in rows
        ),
    )
    return [
        Claim(
            job_id=r["id"],
            queue=r["queue"],
            key=r["key"],
            handler=r["handler"],
            payload=_loads(payloads[r["id"]]),
            attempts=r["attempts"],
            max_attempts=r["max_attempts"],
            token=token,
            timeout=r["timeout"],
        )
        for r in rows
    ]


def _payloads(conn: sqlite3.Connection, job_ids: Sequence[int]) -> dict[int, str]:
    """Payload JSON by job id, for a claim's worth of jobs (one statement)."""
    if not job_ids:
        return {}
    marks = ",".join("?" * len(job_ids))
    rows = conn.execute(
        f"SELECT job_id, payload FROM job_payloads WHERE job_id IN ({marks})", job_ids
    )
    return {job_id: payload for job_id, payload in rows}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed attempt ended, as reported by its worker.

    `status` is the job's next status: succeeded, failed, cancelled, or pending (a retry
    at `run_after`). The result is already JSON text, so a value that cannot be stored is
    caught by the worker, not halfway through a transaction. The update is fenced by
    `token`: it applies only if the job is still running under that claim.
    """

    job_id: int
    token: str
    status: str
    finished_at: float
    result_json: str | None = None
    error: str | None = None
    error_kind: str | None = None
    run_after: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    event: str = ""
    detail: str | None = None


#: Outcomes applied per statement (10 parameters each, well under SQLite's limit).
_FINISH_CHUNK = 256


def finish(
    conn: sqlite3.Connection, worker_id: str | None, outcomes: Sequence[Outcome]
) -> list[int]:
    """Apply fenced outcomes; returns the ids whose claim was still valid.

    One `UPDATE … FROM (VALUES …)` per chunk instead of one statement per job: a busy
    worker reports dozens of outcomes per transaction, and this is its hot path.
    """
    accepted: list[int] = []
    by_id = {o.job_id: o for o in outcomes}
    for first in range(0, len(outcomes), _FINISH_CHUNK):
        chunk = outcomes[first : first + _FINISH_CHUNK]
        values = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        params = [
            value
            for o in chunk
            for value in (
                o.job_id,
                o.token,
                o.status,
                o.error,
                o.error_kind,
                o.run_after,
                o.finished_at,
                o.input_tokens,
                o.output_tokens,
                o.cost,
            )
        ]
        rows = conn.execute(
            f"""
            UPDATE jobs SET status = v.column3, error = v.column4, error_kind = v.column5,
                run_after = v.column6, finished_at = v.column7, updated_at = v.column7,
                input_tokens = v.column8, output_tokens = v.column9, cost = v.column10,
                claim_token = NULL, lease_expires_at = NULL, cancel_requested = 0
            FROM (VALUES {values}) AS v
            WHERE jobs.id = v.column1 AND jobs.claim_token = v.column2
              AND jobs.status = 'running'
            RETURNING jobs.id, jobs.queue
            """,
            params,
        ).fetchall()
        events = []
        for row in rows:
            o = by_id[row["id"]]
            accepted.append(o.job_id)
            events.append(
                (
                    o.finished_at,
                    o.event or o.status,
                    o.job_id,
                    None,
                    row["queue"],
                    worker_id,
                    o.detail,
                )
            )
        _event_rows(conn, events)
        _set_results(conn, [(row["id"], by_id[row["id"]].result_json) for row in rows])
    return accepted


def _set_results(conn: sqlite3.Connection, results: Sequence[tuple[int, str | None]]) -> None:
    """Store (job id, result JSON) pairs; None clears the job's result."""
    conn.executemany(
        "INSERT INTO job_results (job_id, result) VALUES (?, ?) "
        "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result",
        ((job_id, result) for job_id, result in results if result is not None),
    )
    conn.executemany(
        "DELETE FROM job_results WHERE job_id = ?",
        ((job_id,) for job_id, result in results if result is None),
    )


def cancel(conn: sqlite3.Connection, flt: JobFilter, now: float) -> tuple[int, int]:
    """Cancel pending jobs at once and flag running ones; returns (cancelled, flagged)."""
    where, params = _where(flt)
    done = conn.execute(
        f"UPDATE jobs AS j SET status = 'cancelled', finished_at = ?, updated_at = ?, "
        f"error_kind = 'cancelled' WHERE j.status = 'pending' AND {where} "
        f"RETURNING id, queue",
        [now, now, *params],
    ).fetchall()
    flagged = conn.execute(
        f"UPDATE jobs AS j SET cancel_requested = 1 WHERE j.status = 'running' "
        f"AND j.cancel_requested = 0 AND {where} RETURNING id, queue",
        params,
    ).fetchall()
    _event_rows(
        conn,
        [(now, "cancelled", r["id"], None, r["queue"], None, "by user") for r in done]
        + [
            (
                now,
                "cancel_requested",
                r["id"],
                None,
                r["queue"],
                None,
                "worker aborts at its next heartbeat",
            )
            for r in flagged
        ],
    )
    return len(done), len(flagged)


def retry(conn: sqlite3.Connection, flt: JobFilter, now: float) -> int:
    """Put failed/cancelled local jobs back to pending with a fresh set of attempts."""
    where, params = _where(flt)
    rows = conn.execute(
        f"UPDATE jobs AS j SET status = 'pending', attempts = 0, run_after = 0, "
        f"updated_at = ?, finished_at = NULL, worker_id = NULL, cancel_requested = 0, "
        f"error = NULL, error_kind = NULL "
        f"WHERE j.status IN ('failed', 'cancelled') AND j.batch_id IS NULL AND {where} "
        f"RETURNING id, queue, error",
        [now, *params],
    ).fetchall()
    _event_rows(conn, ((now, "retried", r["id"], None, r["queue"], None, "by user") for r in rows))
    return len(rows)


def rescue(conn: sqlite3.Connection, flt: JobFilter, now: float) -> int:
    """Take back running jobs whose lease expired (their worker died or hung).

    The lost attempt stays counted; a job out of attempts fails, a job whose cancel was
    requested is cancelled, the rest go back to pending.
    """
    where, params = _where(flt)
    rows = conn.execute(
        f"""
        UPDATE jobs AS j SET
            status = CASE WHEN j.cancel_requested THEN 'cancelled'
                          WHEN j.attempts >= j.max_attempts THEN 'failed'
                          ELSE 'pending' END,
            error = 'lease expired: worker ' || coalesce(j.worker_id, '?') || ' stopped '
                    || 'heartbeating',
            error_kind = 'lease_expired', run_after = 0, claim_token = NULL,
            lease_expires_at = NULL, updated_at = ?,
            finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
                               THEN ? ELSE NULL END,
            cancel_requested = 0
        WHERE j.status = 'running' AND {where}
          AND (j.lease_expires_at < ?
               OR j.worker_id IN (SELECT id FROM workers WHERE state = 'dead'))
        RETURNING id, queue, status, worker_id, attempts, max_attempts
        """,
        [now, now, *params, now],
    ).fetchall()
    _event_rows(
        conn,
        (
            (
                now,
                "rescued",
                r["id"],
                None,
                r["queue"],
                r["worker_id"],
                f"lease expired after attempt {r['attempts']}/{r['max_attempts']}; "
                f"now {r['status']}",
            )
            for r in rows
        ),
    )
    return len(rows)


def set_paused(conn: sqlite3.Connection, queue: str, paused: bool, now: float) -> None:
    """Pause (workers stop claiming from it) or resume a queue; NotFoundError if unknown."""
    row = conn.execute(
        "UPDATE queues SET paused = ? WHERE name = ? RETURNING name", (int(paused), queue)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"unknown queue {queue!r}")
    _event_rows(conn, [(now, "paused" if paused else "unpaused", None, None, queue, None, None)])


def register_worker(conn: sqlite3.Connection, worker: Worker) -> None:
    """Record a starting worker process (its first heartbeat)."""
    conn.execute(
        "INSERT OR REPLACE INTO workers (id, host, pid, started_at, heartbeat_at, "
        "heartbeat_interval, state, queues, handler, concurrency, current_jobs, done, failed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', 0, 0)",
        (
            worker.id,
            worker.host,
            worker.pid,
            worker.started_at,
            worker.heartbeat_at,
            worker.heartbeat_interval,
            worker.state,
            json.dumps(worker.queues),
            worker.handler,
            worker.concurrency,
        ),
    )


def heartbeat(
    conn: sqlite3.Connection,
    worker_id: str,
    state: str,
    held: Sequence[tuple[int, str]],
    done: int,
    failed: int,
    lease_seconds: float,
    now: float,
) -> list[int]:
    """Record a heartbeat, extend the worker's leases; returns held jobs to cancel.

    A heartbeat clears the worker's note: the condition it described is over.
    """
    conn.execute(
        "UPDATE workers SET heartbeat_at = ?, state = ?, current_jobs = ?, done = ?, "
        "failed = ?, note = NULL WHERE id = ?",
        (now, state, json.dumps([job_id for job_id, _ in held]), done, failed, worker_id),
    )
    cancel: list[int] = []
    for job_id, token in held:
        row = conn.execute(
            "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND claim_token = ? "
            "AND status = 'running' RETURNING cancel_requested",
            (now + lease_seconds, job_id, token),
        ).fetchone()
        # A lost lease (rescued and maybe re-claimed elsewhere) is aborted like a cancel.
        if row is None or row["cancel_requested"]:
            cancel.append(job_id)
    return cancel


def set_worker_note(conn: sqlite3.Connection, worker_id: str, note: str | None) -> None:
    """Set (or clear, with None) the note shown beside a worker's state."""
    conn.execute("UPDATE workers SET note = ? WHERE id = ?", (note, worker_id))


def release(
    conn: sqlite3.Connection, worker_id: str, held: Sequence[tuple[int, str]], now: float
) -> int:
    """Give a draining worker's unfinished jobs back to pending; the attempt is not counted."""
    released = 0
    for job_id, token in held:
        row = conn.execute(
            "UPDATE jobs SET status = CASE WHEN cancel_requested THEN 'cancelled' "
            "ELSE 'pending' END, attempts = max(attempts - 1, 0), claim_token = NULL, "
            "lease_expires_at = NULL, worker_id = NULL, run_after = 0, updated_at = ?, "
            "cancel_requested = 0 "
            "WHERE id = ? AND claim_token = ? AND status = 'running' RETURNING queue, status",
            (now, job_id, token),
        ).fetchone()
        if row is not None:
            released += 1
            _event_rows(
                conn,
                [
                    (
                        now,
                        "released",
                        job_id,
                        None,
                        row["queue"],
                        worker_id,
                        f"worker shut down; now {row['status']}",
                    )
                ],
            )
    return released


def set_worker_state(conn: sqlite3.Connection, worker_id: str, state: str, now: float) -> None:
    """Set a worker's state; stopping or dying also clears its current jobs."""
    stopped = now if state in ("stopped", "dead") else None
    conn.execute(
        "UPDATE workers SET state = ?, stopped_at = coalesce(?, stopped_at), "
        "current_jobs = CASE WHEN ? IS NULL THEN current_jobs ELSE '[]' END WHERE id = ?",
        (state, stopped, stopped, worker_id),
    )


def mark_stale_workers(conn: sqlite3.Connection, factor: float, now: float) -> list[str]:
    """Flag live-looking workers whose heartbeat is older than `factor` intervals."""
    rows = conn.execute(
        "UPDATE workers SET state = 'stale' WHERE state IN ('idle', 'busy', 'draining') "
        "AND heartbeat_at < ? - ? * heartbeat_interval RETURNING id",
        (now, factor),
    ).fetchall()
    return [r["id"] for r in rows]


# --------------------------------------------------------------------------- reads


def _job_rows(
    conn: sqlite3.Connection,
    flt: JobFilter,
    limit: int | None,
    offset: int,
    order: str,
    with_bodies: bool = True,
) -> Iterator[Job]:
    order_sql = _ORDERS.get(order)
    if order_sql is None:
        raise StoreError(f"unknown sort order {order!r}; one of {', '.join(_ORDERS)}")
    if limit is not None and order in _BY_UPDATED:
        select = _select_jobs(conn, with_bodies)
        sql, params = _merged_by_status(select, flt, order_sql, limit, offset)
    else:
        where, params = _where(flt)
        walk = _walk_order(conn, flt, limit, offset, order)
        select = _select_jobs(conn, with_bodies, walk or "jobs j")
        sql = f"{select} WHERE {where} ORDER BY {order_sql}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, limit, offset]
    for row in conn.execute(sql, params):
        yield _job(row)


_ORDERS = {
    "id": "j.id",
    "-id": "j.id DESC",
    "updated": "j.updated_at, j.id",
    "-updated": "j.updated_at DESC, j.id DESC",
    # Each served by an index, not a sort: the (queue, key) uniqueness index, the
    # (status, time) index and the attempts index. A million-job sort took 100-500 ms.
    "key": "j.queue, j.key",
    "status": "j.status, j.updated_at, j.id",
    "attempts": "j.attempts DESC, j.id",
}

_BY_UPDATED = frozenset({"updated", "-updated"})


#: How to walk the rows in a sort order's own sequence instead of sorting them: the
#: table itself for ids, the (queue, key) uniqueness index for keys, and so on.
_ORDER_WALKS = {
    "id": "jobs j NOT INDEXED",
    "-id": "jobs j NOT INDEXED",
    "key": "jobs j INDEXED BY sqlite_autoindex_jobs_1",
    "attempts": "jobs j INDEXED BY jobs_attempts",
}


def _walk_order(
    conn: sqlite3.Connection, flt: JobFilter, limit: int | None, offset: int, order: str
) -> str | None:
    """The FROM clause that walks `order`'s own sequence, when that beats the planner.

    With a status or queue filter the planner picks that filter's index and sorts all the
    matches: 50 ms for 50k failed jobs, up to two seconds for 900k succeeded ones. A walk
    in the order's sequence visits about (offset + limit) × total / matching rows if the
    matches are spread out; job_counts gives both counts, so take the cheaper way.
    """
    walk = _ORDER_WALKS.get(order)
    if walk is None or limit is None:
        return None
    if not _counted(flt) or flt == ALL_JOBS:
        return None
    matching = count_jobs(conn, flt)
    total = count_jobs(conn, ALL_JOBS)
    return walk if matching > 0 and (offset + limit) * total < matching * matching else None


def _merged_by_status(
    select: str, flt: JobFilter, order_sql: str, limit: int, offset: int
) -> tuple[str, list[Any]]:
    """A page in update order as a merge of per-status runs of the (status, time) indexes.

    No index orders all jobs by time, so the plain query sorted the whole table (a second
    at a million jobs); each status's run is already in order and needs only its first
    offset + limit rows.
    """
    arms: list[str] = []
    params: list[Any] = []
    for status in flt.statuses or tuple(JobStatus):
        where, arm_params = _where(replace(flt, statuses=(status,)))
        arms.append(f"SELECT * FROM ({select} WHERE {where} ORDER BY {order_sql} LIMIT ?)")
        params += [*arm_params, offset + limit]
    outer_order = order_sql.replace("j.", "")
    sql = f"SELECT * FROM ({' UNION ALL '.join(arms)}) ORDER BY {outer_order} LIMIT ? OFFSET ?"
    return sql, [*params, limit, offset]


def _counted(flt: JobFilter) -> bool:
    """Whether job_counts alone answers how many jobs match (statuses and queues only)."""
    return flt == JobFilter(statuses=flt.statuses, queues=flt.queues)


def count_jobs(conn: sqlite3.Connection, flt: JobFilter) -> int:
    """Count matching jobs, from job_counts when the filter allows it (no table scan)."""
    if _counted(flt):
        where_parts: list[str] = []
        params: list[Any] = []
        if flt.statuses:
            where_parts.append(f"status IN ({','.join('?' * len(flt.statuses))})")
            params.extend(flt.statuses)
        if flt.queues:
            where_parts.append(f"queue IN ({','.join('?' * len(flt.queues))})")
            params.extend(flt.queues)
        where = " AND ".join(where_parts) or "1"
        row = conn.execute(
            f"SELECT coalesce(sum(n), 0) FROM job_counts WHERE {where}", params
        ).fetchone()
        return int(row[0])
    where, params = _where(flt)
    return int(conn.execute(f"SELECT count(*) FROM jobs j WHERE {where}", params).fetchone()[0])


def list_queues(conn: sqlite3.Connection) -> list[QueueInfo]:
    """Every queue with its pause flag and job counts per status."""
    counts: dict[str, dict[str, int]] = {}
    for row in conn.execute("SELECT queue, status, n FROM job_counts WHERE n > 0"):
        counts.setdefault(row["queue"], {})[row["status"]] = row["n"]
    return [
        QueueInfo(name=r["name"], paused=bool(r["paused"]), counts=counts.get(r["name"], {}))
        for r in conn.execute("SELECT name, paused FROM queues ORDER BY name")
    ]


def require_jobs(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Raise NotFoundError naming the first id that does not exist."""
    for job_id in ids:
        if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
            raise NotFoundError(f"unknown job id {job_id}")


def require_queue(conn: sqlite3.Connection, name: str) -> None:
    """Raise NotFoundError if the queue does not exist."""
    if conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone() is None:
        raise NotFoundError(f"unknown queue {name!r}")


def list_events(
    conn: sqlite3.Connection, job_id: int | None, after_id: int = 0, limit: int | None = None
) -> list[Event]:
    """Events in order, for one job or all, after an event id (for incremental export)."""
    sql = "SELECT * FROM events WHERE id > ?"
    params: list[Any] = [after_id]
    if job_id is not None:
        sql += " AND job_id = ?"
        params.append(job_id)
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_event(r) for r in conn.execute(sql, params)]


# --------------------------------------------------------------------------- front ends


class SyncStore:
    """Synchronous access to the store, for the `--once` path, the CLI and tests."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> SyncStore:
        """Open (and migrate, unless read-only) the database at `path`.

        `create=False` refuses a missing file (MissingDatabaseError) instead of making one;
        a file that is not a batchdash database is a one-line StoreError, not a traceback.
        """
        with _not_a_database(path):
            conn = connect_sync(path, readonly=readonly, create=create)
            try:
                if readonly:
                    _check_version(conn)
                else:
                    _migrate(conn)
            except BaseException:
                conn.close()
                raise
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        return _with_busy_retry_sync(lambda: _transaction(self.conn, fn))

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read function on this connection."""
        return fn(self.conn)


@contextlib.contextmanager
def _not_a_database(path: Path) -> Iterator[None]:
    """Turn SQLite's "file is not a database" (and kin) into a StoreError naming the file.

    Busy and locked errors stay what they are: callers retry those.
    """
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            raise
        raise StoreError(f"database {path}: {exc}") from exc


def _set_autocheckpoint(conn: sqlite3.Connection, pages: int) -> int:
    """Set the WAL size (pages) at which a commit checkpoints (0: never); the old one."""
    old = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
    return old


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds back into the database, waiting for nobody."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _check_version(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema v{version} is newer than this batchdash")
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is older than this batchdash; run `batchdash init`"
        )


class _Checkpointer:
    """Checkpoints the WAL on its own connection and thread while bulk writes go on.

    A passive checkpoint never blocks the writer, but the WAL only starts over from its
    beginning when a write begins with every frame copied; so every RESTART_EVERY writes,
    the next one waits for the checkpoint to catch up, which keeps the WAL short. At most
    one checkpoint runs at a time (they share the connection).
    """

    RESTART_EVERY = 4

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._running: asyncio.Future[None] | None = None  # the checkpoint in progress
        self._writes = 0

    def _start(self) -> None:
        import asyncio

        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(_checkpoint, self._conn))

    async def _wait(self) -> None:
        running = self._running
        if running is not None:
            await running

    def after_write(self) -> None:
        """Start a checkpoint of what was just committed, unless one is running."""
        self._writes += 1
        self._start()

    async def before_write(self) -> None:
        """Every RESTART_EVERY writes, let the checkpoint catch up before the next one."""
        if self._writes and self._writes % self.RESTART_EVERY == 0:
            await self._wait()
            self._start()
            await self._wait()

    async def close(self) -> None:
        """Wait for the checkpoint in progress (it uses the connection), then close."""
        try:
            await self._wait()
        finally:
            self._conn.close()


class Store:
    """Async access through one long-lived aiosqlite connection."""

    def __init__(self, conn: Any, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._checkpointer: _Checkpointer | None = None

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> Store:
        """Open (and migrate, unless read-only) the database at `path` (see SyncStore.open)."""
        import aiosqlite

        # Check and migrate on a short-lived sync connection; cheap and keeps one code path.
        SyncStore.open(path, readonly=readonly, create=create).close()
        if readonly or not create:
            target = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
            uri = True
        else:
            target = str(path)
            uri = False
        conn = await aiosqlite.connect(target, uri=uri, isolation_level=None)
        store = cls(conn, path)
        await store._call(
            lambda c: _with_busy_retry_sync(partial(_configure, c, readonly=readonly))
        )
        return store

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite's `_execute` runs a callable on its connection thread; using it keeps a
        # whole transaction to one thread hop (pinned aiosqlite range in pyproject.toml).
        def run() -> T:
            return fn(self._conn._conn)

        result: T = await self._conn._execute(run)
        return result

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        import asyncio  # here, not at the top: `--once` never needs the event loop

        checkpointer = self._checkpointer
        if checkpointer is not None:
            await checkpointer.before_write()
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        attempt = 0
        while True:
            try:
                result = await self._call(lambda c: _transaction(c, fn))
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
            else:
                if checkpointer is not None:
                    checkpointer.after_write()
                return result

    @contextlib.asynccontextmanager
    async def bulk_writes(self) -> AsyncIterator[None]:
        """Inside, the WAL is checkpointed on another thread instead of in the commits.

        A commit that takes the WAL past 1000 pages copies it back into the database and
        syncs twice, on the writing thread. During bulk writes a second connection does
        that after each write, overlapping the next transaction (see `_Checkpointer`).
        """
        if self._checkpointer is not None:  # nested: the outer one is already doing it
            yield
            return
        checkpointer = _Checkpointer(connect_sync(self.path))
        pages = await self._call(partial(_set_autocheckpoint, pages=0))
        self._checkpointer = checkpointer
        try:
            yield
        finally:
            self._checkpointer = None
            await self._call(partial(_set_autocheckpoint, pages=pages))
            await checkpointer.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read function on the connection thread."""
        return await self._call(fn)


def list_jobs(
    conn: sqlite3.Connection,
    flt: JobFilter = ALL_JOBS,
    limit: int | None = None,
    offset: int = 0,
    order: str = "id",
    *,
    with_bodies: bool = True,
) -> list[Job]:
    """One page (or all, when `limit` is None) of jobs matching `flt`.

    With `with_bodies=False` every `Job.payload` and `Job.result` is None, and neither is read;
    `Job.error` holds at most LIST_ERROR_CHARS characters.
    """
    return list(_job_rows(conn, flt, limit, offset, order, with_bodies))


def iter_jobs(
    conn: sqlite3.Connection, flt: JobFilter = ALL_JOBS, order: str = "id"
) -> Iterator[Job]:
    """Every job matching `flt`, streamed row by row (for exports of any size)."""
    return _job_rows(conn, flt, None, 0, order)


def get_job(conn: sqlite3.Connection, job_id: int) -> Job:
    """The job with this id, or NotFoundError."""
    row = conn.execute(f"{_select_jobs(conn, True)} WHERE j.id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"unknown job id {job_id}")
    return _job(row)


#: The texts of a job that `get_job_head` cuts.
_JOB_TEXTS = ("error", "payload", "result")


def get_job_head(conn: sqlite3.Connection, job_id: int, chars: int) -> tuple[Job, dict[str, int]]:
    """The job with its error, payload and result each cut to `chars` characters.

    Returns the job and, for each text that was cut, its full size in UTF-8 bytes (so a view
    can say how much it leaves out). A cut payload or result is the raw JSON head, undecoded.
    """
    row = conn.execute(
        f"SELECT {_cut_columns(conn, chars)}, substr(p.payload, 1, ?) AS payload, "
        "substr(r.result, 1, ?) AS result, "
        "length(j.error) AS error_chars, length(CAST(j.error AS BLOB)) AS error_bytes, "
        "length(p.payload) AS payload_chars, length(CAST(p.payload AS BLOB)) AS payload_bytes, "
        "length(r.result) AS result_chars, length(CAST(r.result AS BLOB)) AS result_bytes "
        "FROM jobs j LEFT JOIN job_payloads p ON p.job_id = j.id "
        "LEFT JOIN job_results r ON r.job_id = j.id WHERE j.id = ?",
        (chars, chars, job_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"unknown job id {job_id}")
    cut = {name: row[f"{name}_bytes"] for name in _JOB_TEXTS if (row[f"{name}_chars"] or 0) > chars}
    bodies = {name: row[name] if name in cut else _loads(row[name]) for name in _JOB_TEXTS[1:]}
    job = _build(Job, row, **bodies, cancel_requested=bool(row["cancel_requested"]))
    return job, cut


def list_workers(conn: sqlite3.Connection) -> list[Worker]:
    """All workers, most recent heartbeat first."""
    return [_worker(r) for r in conn.execute("SELECT * FROM workers ORDER BY heartbeat_at DESC")]


def get_worker(conn: sqlite3.Connection, worker_id: str) -> Worker:
    """The worker with this id, or NotFoundError."""
    row = conn.execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"unknown worker {worker_id!r}")
    return _worker(row)


def next_run_after(conn: sqlite3.Connection, now: float) -> float | None:
    """When the earliest delayed (retrying) job becomes runnable, if any is waiting."""
    row = conn.execute(
        "SELECT min(run_after) FROM jobs WHERE status = 'pending' AND batch_id IS NULL "
        "AND run_after > ?",
        (now,),
    ).fetchone()
    value = row[0]
    return None if value is None else float(value)


def job_status(conn: sqlite3.Connection, job_id: int) -> str:
    """Just the status of one job (cheap, for polling in tests and tools)."""
    return get_job(conn, job_id).status


# --------------------------------------------------------------------------- batch reads


def _batch(row: sqlite3.Row) -> Batch:
    return _build(Batch, row, errors=_loads(row["errors"]), metadata=_loads(row["metadata"]))


_ACTIVE_BATCH_STATES = (
    "('submitting', 'validating', 'running', 'finalizing', 'cancelling', 'unknown')"
)


def list_batches(
    conn: sqlite3.Connection,
    *,
    active_only: bool = False,
    active_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[Batch]:
    """Batches newest first (active ones first when asked); `limit`/`offset` page them.

    `active_only` uses the partial index on active states.
    """
    sql = "SELECT * FROM batches"
    if active_only:
        sql += f" WHERE state IN {_ACTIVE_BATCH_STATES}"
    order = f"state IN {_ACTIVE_BATCH_STATES} DESC, " if active_first else ""
    sql += f" ORDER BY {order}created_at DESC, id DESC"
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params.extend([limit, offset])
    return [_batch(r) for r in conn.execute(sql, params)]


def count_batches(conn: sqlite3.Connection) -> int:
    """How many batches are tracked."""
    return int(conn.execute("SELECT count(*) FROM batches").fetchone()[0])


def get_batch(conn: sqlite3.Connection, batch_id: int | str) -> Batch:
    """A batch by local id or by the provider's id, or NotFoundError."""
    if isinstance(batch_id, int) or str(batch_id).isdigit():
        row = conn.execute("SELECT * FROM batches WHERE id = ?", (int(batch_id),)).fetchone()
    else:
        row = conn.execute("SELECT * FROM batches WHERE remote_id = ?", (batch_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"unknown batch {batch_id}")
    return _batch(row)


def batch_outcome_counts(conn: sqlite3.Connection, batch_id: int) -> dict[str, int]:
    """How many of a batch's items ended in each outcome."""
    return {
        r["outcome"]: r["n"]
        for r in conn.execute(
            "SELECT outcome, count(*) AS n FROM batch_items WHERE batch_id = ? GROUP BY outcome",
            (batch_id,),
        )
    }


def list_batch_items(
    conn: sqlite3.Connection,
    batch_id: int,
    *,
    outcomes: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
) -> list[BatchItem]:
    """A batch's items (optionally of some outcomes), in line order."""
    sql = "SELECT * FROM batch_items WHERE batch_id = ?"
    params: list[Any] = [batch_id]
    if outcomes:
        sql += f" AND outcome IN ({','.join('?' * len(outcomes))})"
        params.extend(outcomes)
    sql += " ORDER BY line_no, custom_id"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params.extend([limit, offset])
    return [_build(BatchItem, r) for r in conn.execute(sql, params)]


# --------------------------------------------------------------------------- QA reads

#: Judges whose overall scores for one job differ by at least this much "disagree".
DISAGREEMENT_THRESHOLD = 3.0


def qa_results_for_job(conn: sqlite3.Connection, job_id: int) -> list[QAResult]:
    """Every judge's verdict on one job, with its per-dimension scores."""
    results = []
    for r in conn.execute(
        "SELECT * FROM qa_results WHERE job_id = ? ORDER BY judge", (job_id,)
    ).fetchall():
        scores = {
            s["dimension"]: s["score"]
            for s in conn.execute(
                "SELECT dimension, score FROM qa_scores WHERE result_id = ? ORDER BY dimension",
                (r["id"],),
            )
        }
        results.append(
            QAResult(
                id=r["id"],
                job_id=r["job_id"],
                judge=r["judge"],
                scores=scores,
                comment=r["comment"],
                error=r["error"],
                raw=r["raw"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                cost=r["cost"],
                created_at=r["created_at"],
                batch_id=r["batch_id"],
            )
        )
    return results


def qa_summary(conn: sqlite3.Connection, *, queue: str | None = None, worst: int = 10) -> QASummary:
    """Aggregates over QA results, computed in SQL (optionally for one queue)."""
    scope = "JOIN jobs j ON j.id = q.job_id WHERE (? IS NULL OR j.queue = ?)"
    params = (queue, queue)
    head = conn.execute(
        f"SELECT count(*) AS n, coalesce(sum(q.error IS NOT NULL), 0) AS errors "
        f"FROM qa_results q {scope}",
        params,
    ).fetchone()
    stats = [
        QAStat(r["judge"], r["dimension"], r["n"], r["mean"], r["lo"], r["hi"])
        for r in conn.execute(
            f"SELECT q.judge, s.dimension, count(*) AS n, avg(s.score) AS mean, "
            f"min(s.score) AS lo, max(s.score) AS hi "
            f"FROM qa_scores s JOIN qa_results q ON q.id = s.result_id {scope} "
            f"GROUP BY q.judge, s.dimension ORDER BY q.judge, s.dimension",
            params,
        )
    ]
    distribution = {
        int(r["bucket"]): r["n"]
        for r in conn.execute(
            f"SELECT CAST(round(q.overall) AS INTEGER) AS bucket, count(*) AS n "
            f"FROM qa_results q {scope} AND q.overall IS NOT NULL GROUP BY bucket",
            params,
        )
    }
    worst_rows = [
        (r["job_id"], r["key"], r["judge"], r["overall"])
        for r in conn.execute(
            f"SELECT q.job_id, j.key, q.judge, q.overall FROM qa_results q {scope} "
            f"AND q.overall IS NOT NULL ORDER BY q.overall, q.job_id LIMIT ?",
            (*params, worst),
        )
    ]
    disagreements = [
        (r["job_id"], r["key"], r["lo"], r["hi"])
        for r in conn.execute(
            f"SELECT q.job_id, j.key, min(q.overall) AS lo, max(q.overall) AS hi "
            f"FROM qa_results q {scope} AND q.overall IS NOT NULL GROUP BY q.job_id "
            f"HAVING max(q.overall) - min(q.overall) >= ? ORDER BY hi - lo DESC, q.job_id "
            f"LIMIT ?",
            (*params, DISAGREEMENT_THRESHOLD, worst),
        )
    ]
    return QASummary(
        results=head["n"] - head["errors"],
        errors=head["errors"],
        stats=stats,
        distribution=distribution,
        worst=worst_rows,
        disagreements=disagreements,
    )


# ----- dashboard reads (core/snapshot.py, `--once`, the TUI)


def status_totals(conn: sqlite3.Connection) -> dict[str, int]:
    """Jobs per status over all queues, from job_counts."""
    return {
        r["status"]: int(r["n"])
        for r in conn.execute("SELECT status, sum(n) AS n FROM job_counts GROUP BY status")
    }


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens and dollars of one kind of spend."""

    input_tokens: int
    output_tokens: int
    cost: float


def work_spend(conn: sqlite3.Connection, qa_prefix: str) -> Spend:
    """What the jobs themselves spent, from job_counts, leaving out QA-batch queues.

    The lines of a QA batch are jobs in a `qa_prefix` queue whose cost is also on their
    verdicts (`qa_spend`); counting both would bill the judges twice.
    """
    row = conn.execute(
        "SELECT coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
        "coalesce(sum(cost), 0) FROM job_counts WHERE substr(queue, 1, length(?)) <> ?",
        (qa_prefix, qa_prefix),
    ).fetchone()
    return Spend(int(row[0]), int(row[1]), float(row[2]))


def qa_spend(conn: sqlite3.Connection) -> Spend:
    """What the QA judges spent (every stored verdict), from the trigger-kept total."""
    row = conn.execute("SELECT input_tokens, output_tokens, cost FROM qa_totals").fetchone()
    return Spend(0, 0, 0.0) if row is None else Spend(int(row[0]), int(row[1]), float(row[2]))


#: Jobs a local worker finished: the predicate of the `jobs_local_done` index, verbatim,
#: so the planner can use it (cancels and remote-batch ingests are not throughput).
_LOCAL_DONE = (
    "jobs INDEXED BY jobs_local_done WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL"
)


def finished_per_bucket(
    conn: sqlite3.Connection, start: float, width: float, buckets: int
) -> list[int]:
    """Jobs local workers finished (succeeded or failed) per `width`-second bucket.

    Read from the `jobs_local_done` index alone over the window, whatever the table size.
    One `count(*)` range per bucket is ~6x faster than a GROUP BY over a computed bucket
    (3 ms vs 19 ms for 90,000 finished jobs in the window).
    """
    return [
        int(
            conn.execute(
                f"SELECT count(*) FROM {_LOCAL_DONE} AND finished_at >= ? AND finished_at < ?",
                (start + width * i, start + width * (i + 1)),
            ).fetchone()[0]
        )
        for i in range(buckets)
    ]


def first_local_start(conn: sqlite3.Connection, since: float, until: float) -> float | None:
    """When the first job a local worker finished in [since, until) started (or finished)."""
    row = conn.execute(
        f"SELECT coalesce(started_at, finished_at) FROM {_LOCAL_DONE} "
        "AND finished_at >= ? AND finished_at < ? ORDER BY finished_at LIMIT 1",
        (since, until),
    ).fetchone()
    return None if row is None else float(row[0])


def last_local_finish(conn: sqlite3.Connection) -> float | None:
    """When a local worker last finished a job (one index seek)."""
    value = conn.execute(f"SELECT max(finished_at) FROM {_LOCAL_DONE}").fetchone()[0]
    return None if value is None else float(value)


def local_pending_by_queue(conn: sqlite3.Connection, now: float) -> dict[str, tuple[int, int]]:
    """(pending, of which waiting out a retry delay) per queue, local jobs only.

    Remote-batch lines are pending too until ingested, but no worker claims them. One pass
    over the `jobs_local_pending` index (no table rows).
    """
    return {
        r[0]: (int(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT queue, count(*), coalesce(sum(run_after > ?), 0) "
            "FROM jobs INDEXED BY jobs_local_pending "
            "WHERE status = 'pending' AND batch_id IS NULL GROUP BY queue",
            (now,),
        )
    }


def count_jobs_upto(conn: sqlite3.Connection, flt: JobFilter, cap: int) -> tuple[int, bool]:
    """(count, exact): exact from job_counts when the filter allows, else counted to `cap`.

    Free-text, key and score filters cannot use job_counts; stopping at `cap` keeps a
    dashboard refresh from counting a million rows every second.
    """
    if flt == JobFilter(statuses=flt.statuses, queues=flt.queues):
        return count_jobs(conn, flt), True
    where, params = _where(flt)
    n = int(
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE {where} LIMIT ?)",
            [*params, cap + 1],
        ).fetchone()[0]
    )
    return min(n, cap), n <= cap


def batch_events(conn: sqlite3.Connection, batch_id: int, limit: int = 200) -> list[Event]:
    """The latest events of one batch (oldest first), through the events_batch index."""
    rows = conn.execute(
        "SELECT * FROM (SELECT * FROM events WHERE batch_id = ? AND job_id IS NULL "
        "ORDER BY id DESC LIMIT ?) ORDER BY id",
        (batch_id, limit),
    )
    return [_event(r) for r in rows]


# --------------------------------------------------------------------------- QA (writes)

#: Fibonacci hash of a job id (odd multiplier, so a bijection on 32-bit ids): QA samples
#: take jobs in this order, spread over the whole id range and the same on every rerun.
_QA_SAMPLE_HASH = "((j.id * 2654435761) % 4294967296)"
_QA_HASH_RANGE = 2**32


def save_qa_result(conn: sqlite3.Connection, result: QAResult, *, replace: bool) -> bool:
    """Store a verdict with its scores and a timeline event; False when it was skipped.

    A (job, judge) pair that already has scores keeps them unless `replace` (`--rescore`);
    an earlier error row is always replaced, since an error is not a score.
    """
    row = conn.execute(
        "INSERT INTO qa_results (job_id, judge, overall, comment, error, raw, input_tokens, "
        "output_tokens, cost, batch_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (job_id, judge) DO UPDATE SET overall = excluded.overall, "
        "comment = excluded.comment, error = excluded.error, raw = excluded.raw, "
        "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
        "cost = excluded.cost, batch_id = excluded.batch_id, created_at = excluded.created_at "
        "WHERE ? OR qa_results.error IS NOT NULL RETURNING id",
        (
            result.job_id,
            result.judge,
            result.overall,
            result.comment,
            result.error,
            result.raw,
            result.input_tokens,
            result.output_tokens,
            result.cost,
            result.batch_id,
            result.created_at,
            int(replace),
        ),
    ).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM qa_scores WHERE result_id = ?", (row["id"],))
    conn.executemany(
        "INSERT INTO qa_scores (result_id, dimension, score) VALUES (?, ?, ?)",
        ((row["id"], dimension, score) for dimension, score in result.scores.items()),
    )
    if result.error is None:
        kind, detail = "qa_scored", f"{result.judge}: overall {result.overall:g}"
    else:
        kind, detail = "qa_error", f"{result.judge}: {result.error[:200]}"
    conn.execute(
        "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
        "SELECT ?, ?, id, ?, queue, ? FROM jobs WHERE id = ?",
        (result.created_at, kind, result.batch_id, detail, result.job_id),
    )
    return True


def qa_sample_ids(
    conn: sqlite3.Connection,
    flt: JobFilter,
    *,
    limit: int | None = None,
    fraction: float | None = None,
    skip_queue_prefix: str | None = None,
) -> list[int]:
    """Ids of the matching jobs to judge: a deterministic sample, the same on every rerun.

    `limit` takes the first N in hash order, `fraction` those whose hash falls in the
    lowest share of the range (a larger sample always contains a smaller one). Queues
    starting with `skip_queue_prefix` (the QA batches' own queues) are left out unless the
    filter names queues.
    """
    where, params = _where(flt)
    sql = f"SELECT j.id FROM jobs j WHERE {where}"
    if skip_queue_prefix and not flt.queues:
        sql += " AND substr(j.queue, 1, ?) != ?"
        params += [len(skip_queue_prefix), skip_queue_prefix]
    if fraction is not None:
        sql += f" AND {_QA_SAMPLE_HASH} < ?"
        params.append(fraction * _QA_HASH_RANGE)
    if limit is not None:
        sql += f" ORDER BY {_QA_SAMPLE_HASH} LIMIT ?"
        params.append(limit)
    else:
        sql += " ORDER BY j.id"
    return [r[0] for r in conn.execute(sql, params)]


def number_qa_successes(conn: sqlite3.Connection, job_ids: Sequence[int]) -> list[int]:
    """Count these successes in their queues' QA tallies; each one's number, in order.

    Run in the transaction that records the successes, so the numbers are unique and
    gap-free per queue however many workers (on however many hosts) record them.
    """
    numbers: list[int] = []
    for job_id in job_ids:
        row = conn.execute(
            "INSERT INTO qa_success_counts (queue, succeeded) "
            "SELECT queue, 1 FROM jobs WHERE id = ? "
            "ON CONFLICT (queue) DO UPDATE SET succeeded = succeeded + 1 RETURNING succeeded",
            (job_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job {job_id}")
        numbers.append(row["succeeded"])
    return numbers


def qa_scored_pairs(
    conn: sqlite3.Connection, job_ids: Sequence[int], judges: Sequence[str]
) -> set[tuple[int, str]]:
    """The (job, judge) pairs among these that already have scores (not just an error)."""
    if not job_ids or not judges:
        return set()
    rows = conn.execute(
        f"SELECT job_id, judge FROM qa_results WHERE error IS NULL "
        f"AND job_id IN ({','.join('?' * len(job_ids))}) "
        f"AND judge IN ({','.join('?' * len(judges))})",
        [*job_ids, *judges],
    )
    return {(r["job_id"], r["judge"]) for r in rows}


def set_qa_rubric(conn: sqlite3.Connection, queue: str, rubric_json: str | None) -> None:
    """Set (or with None, reset to the default) the QA rubric of a queue."""
    row = conn.execute(
        "UPDATE queues SET qa_rubric = ? WHERE name = ? RETURNING name", (rubric_json, queue)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"unknown queue {queue!r}")


def get_qa_rubric(conn: sqlite3.Connection, queue: str) -> str | None:
    """A queue's QA rubric as stored (JSON text), None when it uses the default."""
    row = conn.execute("SELECT qa_rubric FROM queues WHERE name = ?", (queue,)).fetchone()
    if row is None:
        raise NotFoundError(f"unknown queue {queue!r}")
    value: str | None = row["qa_rubric"]
    return value


def qa_dimensions(conn: sqlite3.Connection) -> list[str]:
    """Every dimension any judge has scored, sorted (the columns of a QA export)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT dimension FROM qa_scores ORDER BY 1")]


def iter_qa_rows(conn: sqlite3.Connection, flt: JobFilter = ALL_JOBS) -> Iterator[dict[str, Any]]:
    """QA results of the matching jobs, one dict per (job, judge), streamed row by row."""
    where, params = _where(flt)
    rows = conn.execute(
        "SELECT q.job_id, j.key, j.queue, q.judge, q.overall, q.comment, q.error, q.raw, "
        "q.input_tokens, q.output_tokens, q.cost, q.batch_id, q.created_at, "
        "(SELECT json_group_object(s.dimension, s.score) FROM qa_scores s "
        "WHERE s.result_id = q.id) AS scores "
        f"FROM qa_results q JOIN jobs j ON j.id = q.job_id WHERE {where} "
        "ORDER BY q.job_id, q.judge",
        params,
    )
    for row in rows:
        data = dict(row)
        data["scores"] = json.loads(data["scores"])
        yield data


def existing_job_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    """Which of these job ids exist."""
    if not ids:
        return set()
    rows = conn.execute(f"SELECT id FROM jobs WHERE id IN ({','.join('?' * len(ids))})", ids)
    return {r[0] for r in rows}


def inflight_batch_keys(conn: sqlite3.Connection, queue: str) -> list[str]:
    """Keys of a queue's remote-batch jobs still waiting for their results."""
    rows = conn.execute(
        "SELECT key FROM jobs WHERE queue = ? AND status IN ('pending', 'running') "
        "AND batch_id IS NOT NULL",
        (queue,),
    )
    return [r[0] for r in rows]


def qa_batches_to_collect(conn: sqlite3.Connection, meta_key: str) -> list[Batch]:
    """Ingested batches whose metadata has `meta_key` and whose verdicts are not stored yet."""
    rows = conn.execute(
        "SELECT * FROM batches b WHERE b.ingested_at IS NOT NULL "
        "AND CASE WHEN json_valid(b.metadata) THEN json_extract(b.metadata, '$.' || ?) END "
        "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = b.id "
        "AND e.kind = 'qa_collected') ORDER BY b.id",
        (meta_key,),
    )
    return [_batch(r) for r in rows]


def mark_qa_collected(conn: sqlite3.Connection, batch: Batch, detail: str, now: float) -> None:
    """Record that a QA batch's verdicts are stored (it is not collected again)."""
    _event_rows(conn, [(now, "qa_collected", None, batch.id, batch.queue, None, detail)])


# ----- remote batches (writes): core/batches.py, core/providers/openai_batch.py, core/sync.py

#: Columns of `batches` that `update_batch` may set (JSON ones are serialized for you).
_BATCH_COLUMNS = frozenset(Batch.__dataclass_fields__) - {"id", "created_at"}
_BATCH_JSON_COLUMNS = frozenset({"errors", "metadata"})
_TERMINAL_BATCH_STATES = "('succeeded', 'partial', 'failed', 'expired', 'cancelled')"


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch row to insert before anything is sent to the provider (or when importing)."""

    queue: str
    endpoint: str
    model: str | None
    submit_key: str | None = None
    remote_id: str | None = None
    state: str = "submitting"
    raw_status: str | None = None
    input_path: str | None = None
    input_file_id: str | None = None
    metadata: dict[str, str] | None = None
    total: int = 0
    parent_id: int | None = None
    shard_index: int | None = None
    shard_count: int | None = None
    provider: str = "openai"
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What one result-file line (or reconciliation) says about one custom_id."""

    custom_id: str
    outcome: str
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_json: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


def add_batch(conn: sqlite3.Connection, new: NewBatch, now: float) -> int:
    """Insert a batch row with its first timeline event; returns the local id."""
    row = conn.execute(
        "INSERT INTO batches (provider, remote_id, submit_key, queue, endpoint, model, "
        "input_path, input_file_id, raw_status, state, total, metadata, parent_id, "
        "shard_index, shard_count, base_url, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            new.provider,
            new.remote_id,
            new.submit_key,
            new.queue,
            new.endpoint,
            new.model,
            new.input_path,
            new.input_file_id,
            new.raw_status,
            new.state,
            new.total,
            None if new.metadata is None else dumps(new.metadata),
            new.parent_id,
            new.shard_index,
            new.shard_count,
            new.base_url,
            now,
            now,
        ),
    ).fetchone()
    ensure_queue(conn, new.queue, now)
    kind = "batch_imported" if new.remote_id else "batch_intent"
    _event_rows(conn, [(now, kind, None, row["id"], new.queue, None, new.remote_id)])
    return int(row["id"])


def existing_job_keys(conn: sqlite3.Connection, queue: str, keys: Sequence[str]) -> dict[str, int]:
    """Which of these keys already name a job of the queue (key → job id)."""
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        rows = conn.execute(
            f"SELECT key, id FROM jobs WHERE queue = ? AND key IN ({','.join('?' * len(part))})",
            (queue, *part),
        )
        found.update((r["key"], r["id"]) for r in rows)
    return found


def add_batch_lines(
    conn: sqlite3.Connection,
    batch_id: int,
    queue: str,
    handler: str,
    lines: Sequence[tuple[int, str, str, str]],
    now: float,
) -> None:
    """Insert (line_no, custom_id, job key, payload JSON) as items and their pending jobs."""
    _insert_jobs(
        conn,
        queue,
        handler,
        ((key, payload, 0, 1, 1) for _, _, key, payload in lines),
        now,
        batch_id,
    )
    conn.executemany(
        "INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
        "VALUES (?, ?, (SELECT id FROM jobs WHERE queue = ? AND key = ?), ?) "
        "ON CONFLICT (batch_id, custom_id) DO NOTHING",
        ((batch_id, custom_id, queue, key, line_no) for line_no, custom_id, key, _ in lines),
    )


def batch_lines_enqueued(conn: sqlite3.Connection, batch_id: int, now: float) -> None:
    """Write the `enqueued` event of every job of a freshly recorded batch."""
    conn.execute(
        "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
        "SELECT ?, 'enqueued', id, batch_id, queue, 'remote batch ' || batch_id "
        "FROM jobs WHERE batch_id = ?",
        (now, batch_id),
    )


def batch_upload_rows(conn: sqlite3.Connection, batch_id: int) -> Iterator[tuple[str, str]]:
    """(custom_id, payload JSON) of a batch's lines in upload order, streamed."""
    for row in conn.execute(
        "SELECT i.custom_id, p.payload FROM batch_items i "
        "JOIN job_payloads p ON p.job_id = i.job_id WHERE i.batch_id = ? ORDER BY i.line_no",
        (batch_id,),
    ):
        yield row[0], row[1]


def update_batch(
    conn: sqlite3.Connection,
    batch_id: int,
    fields: dict[str, Any],
    now: float,
    event: tuple[str, str | None] | None = None,
) -> None:
    """Set some columns of a batch (names checked), optionally with a timeline event."""
    unknown = set(fields) - _BATCH_COLUMNS
    if unknown:
        raise StoreError(f"update_batch: unknown columns {sorted(unknown)}")
    values = {
        k: (None if v is None else dumps(v)) if k in _BATCH_JSON_COLUMNS else v
        for k, v in fields.items()
    }
    values["updated_at"] = now
    assignments = ", ".join(f"{name} = ?" for name in values)
    row = conn.execute(
        f"UPDATE batches SET {assignments} WHERE id = ? RETURNING queue",
        (*values.values(), batch_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"unknown batch {batch_id}")
    if event is not None:
        _event_rows(conn, [(now, event[0], None, batch_id, row["queue"], None, event[1])])


#: How far along a provider status is; a poll never records a status of a lower rank
#: (a poller answering late must not undo what a faster one wrote). Terminal is final.
_RAW_RANK = {
    "validating": 1,
    "in_progress": 2,
    "finalizing": 3,
    "cancelling": 3,
    "completed": 4,
    "failed": 4,
    "expired": 4,
    "cancelled": 4,
}
_TERMINAL_RANK = 4
_RANK_SQL = (
    "(CASE raw_status "
    + " ".join(f"WHEN '{raw}' THEN {rank}" for raw, rank in _RAW_RANK.items())
    + " ELSE 0 END)"
)


def record_remote(
    conn: sqlite3.Connection, batch_id: int, fields: dict[str, Any], now: float
) -> bool:
    """Store a successful poll, unless it would move the batch backwards; True if stored.

    One compare-and-set UPDATE: nothing changes once the batch is ingested or its status
    is terminal, and a status never replaces a further one. Unknown statuses (other
    providers' words) may replace any non-terminal one. A change of raw status gets an
    event; a success clears the poll error and its backoff.
    """
    old = conn.execute("SELECT raw_status FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if old is None:
        raise NotFoundError(f"unknown batch {batch_id}")
    new_raw = fields.get("raw_status", old["raw_status"])
    values = {
        k: (None if v is None else dumps(v)) if k in _BATCH_JSON_COLUMNS else v
        for k, v in fields.items()
    }
    unknown = set(values) - _BATCH_COLUMNS
    if unknown:
        raise StoreError(f"record_remote: unknown columns {sorted(unknown)}")
    values.update(
        polled_at=now,
        poll_error=None,
        poll_failures=0,
        next_poll_at=None,
        unreachable_since=None,
        updated_at=now,
    )
    guard = f"ingested_at IS NULL AND {_RANK_SQL} < {_TERMINAL_RANK}"
    params: list[Any] = [*values.values(), batch_id]
    if new_raw in _RAW_RANK:
        guard += f" AND {_RANK_SQL} <= ?"
        params.append(_RAW_RANK[new_raw])
    assignments = ", ".join(f"{name} = ?" for name in values)
    row = conn.execute(
        f"UPDATE batches SET {assignments} WHERE id = ? AND {guard} RETURNING queue", params
    ).fetchone()
    if row is None:
        return False
    if new_raw != old["raw_status"]:
        detail = f"{old['raw_status'] or '-'} → {new_raw}"
        _event_rows(conn, [(now, "batch_status", None, batch_id, row["queue"], None, detail)])
    return True


def note_poll_failure(conn: sqlite3.Connection, batch_id: int, error: str, now: float) -> int:
    """Record a failed provider call on the batch; returns its consecutive failure count."""
    row = conn.execute(
        "UPDATE batches SET poll_error = ?, polled_at = ?, poll_failures = poll_failures + 1, "
        "updated_at = ? WHERE id = ? RETURNING poll_failures",
        (error, now, now, batch_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"unknown batch {batch_id}")
    return int(row[0])


def mark_unreachable(conn: sqlite3.Connection, batch_id: int, now: float) -> bool:
    """Note since when a batch cannot be reached (kept while it stays so); True if new."""
    row = conn.execute(
        "UPDATE batches SET unreachable_since = ? WHERE id = ? AND unreachable_since IS NULL "
        "RETURNING queue, poll_error",
        (now, batch_id),
    ).fetchone()
    if row is not None:
        _event_rows(
            conn,
            [(now, "batch_unreachable", None, batch_id, row["queue"], None, row["poll_error"])],
        )
    return row is not None


def apply_item_results(
    conn: sqlite3.Connection,
    batch_id: int,
    results: Sequence[tuple[ItemResult, str, str | None]],
    now: float,
) -> None:
    """Record (result, job status, job error kind) per custom_id, set-based and idempotent.

    Only items still `pending` change, and only jobs still pending under this batch (a
    job resubmitted to a child batch belongs to the child): running it twice is a no-op.
    """
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS ingest_items (custom_id TEXT PRIMARY KEY, "
        "job_id INTEGER, outcome TEXT, status_code INTEGER, error_code TEXT, "
        "error_message TEXT, input_tokens INTEGER, output_tokens INTEGER, "
        "cost REAL, job_status TEXT, error_kind TEXT)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS temp.ingest_items_job ON ingest_items (job_id)")
    conn.execute("DELETE FROM temp.ingest_items")
    # The ~2 KB result texts stay out of the temp table: copying them through it twice
    # (and spilling it to a temp file) cost more than the rest of the staging.
    conn.executemany(
        "INSERT OR IGNORE INTO temp.ingest_items VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                r.custom_id,
                r.outcome,
                r.status_code,
                r.error_code,
                r.error_message,
                r.input_tokens,
                r.output_tokens,
                r.cost,
                status,
                kind,
            )
            for r, status, kind in results
        ),
    )
    # Keep only lines whose item is still pending: this is what makes a re-run a no-op.
    conn.execute(
        "UPDATE temp.ingest_items SET job_id = (SELECT i.job_id FROM batch_items i "
        "WHERE i.batch_id = ? AND i.custom_id = ingest_items.custom_id "
        "AND i.outcome = 'pending')",
        (batch_id,),
    )
    conn.execute("DELETE FROM temp.ingest_items WHERE job_id IS NULL")
    live_jobs = (
        "FROM temp.ingest_items s CROSS JOIN jobs j ON j.id = s.job_id "
        "WHERE j.batch_id = ? AND j.status = 'pending'"
    )
    conn.execute(
        "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
        "SELECT ?, s.job_status, j.id, ?, j.queue, coalesce(s.error_message, 'batch result') "
        + live_jobs,
        (now, batch_id, batch_id),
    )
    texts: dict[str, str | None] = {}
    for r, _, _ in results:
        texts.setdefault(r.custom_id, r.result_json)  # the first line wins, as in the stage
    # In job id order: the results' job_id index then grows at its end, not at random.
    rows = conn.execute(f"SELECT s.custom_id, j.id {live_jobs} ORDER BY j.id", (batch_id,))
    _set_results(conn, [(job_id, texts[custom_id]) for custom_id, job_id in rows])
    # Unary + keeps the planner on the rowid lookups instead of scanning the batch's jobs.
    conn.execute(
        "UPDATE jobs SET (status, error, error_kind, input_tokens, output_tokens, cost) = "
        "(SELECT job_status, error_message, error_kind, input_tokens, output_tokens, cost "
        "FROM temp.ingest_items WHERE job_id = jobs.id), finished_at = ?, updated_at = ? "
        "WHERE id IN (SELECT job_id FROM temp.ingest_items) AND +batch_id = ? "
        "AND +status = 'pending'",
        (now, now, batch_id),
    )
    conn.execute(
        "UPDATE batch_items SET (outcome, status_code, error_code, error_message, "
        "input_tokens, output_tokens, cost) = (SELECT outcome, status_code, error_code, "
        "error_message, input_tokens, output_tokens, cost FROM temp.ingest_items s "
        "WHERE s.custom_id = batch_items.custom_id) "
        "WHERE batch_id = ? AND custom_id IN (SELECT custom_id FROM temp.ingest_items)",
        (batch_id,),
    )
    conn.execute("DELETE FROM temp.ingest_items")


def pending_item_ids(conn: sqlite3.Connection, batch_id: int) -> list[str]:
    """custom_ids of a batch's items that no result has mentioned yet."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT custom_id FROM batch_items WHERE batch_id = ? AND outcome = 'pending'",
            (batch_id,),
        )
    ]


def batch_item_lines(
    conn: sqlite3.Connection, batch_id: int, line_nos: Sequence[int]
) -> list[tuple[str, int]]:
    """(custom_id, line_no) of the items on these upload lines."""
    if not line_nos:
        return []
    rows = conn.execute(
        f"SELECT custom_id, line_no FROM batch_items WHERE batch_id = ? "
        f"AND line_no IN ({','.join('?' * len(line_nos))})",
        (batch_id, *line_nos),
    )
    return [(r[0], r[1]) for r in rows]


def close_ingest(conn: sqlite3.Connection, batch_id: int, state: str, now: float) -> bool:
    """Totals from the items onto the batch, the final state, and `ingested_at`.

    Claimed by a compare-and-set on `ingested_at`, so a batch is closed (and gets its
    `batch_ingested` event) once, whoever else ingested it meanwhile. True if closed now.
    """
    claimed = conn.execute(
        "UPDATE batches SET ingested_at = ? WHERE id = ? AND ingested_at IS NULL", (now, batch_id)
    ).rowcount
    if not claimed:
        return False
    row = conn.execute(
        "SELECT coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
        "coalesce(sum(cost), 0), count(*) FROM batch_items WHERE batch_id = ?",
        (batch_id,),
    ).fetchone()
    counts = batch_outcome_counts(conn, batch_id)
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    # The provider counts a non-2xx answer as completed: once the lines are in, succeeded
    # and failed come from their outcomes (cancelled and unread lines are neither).
    unsettled = counts.get("succeeded", 0) + counts.get("cancelled", 0) + counts.get("pending", 0)
    update_batch(
        conn,
        batch_id,
        {
            "input_tokens": row[0],
            "output_tokens": row[1],
            "cost": row[2],
            "total": row[3],
            "completed": counts.get("succeeded", 0),
            "failed": row[3] - unsettled,
            "state": state,
            "next_poll_at": None,
        },
        now,
        ("batch_ingested", f"{state}: {detail}"),
    )
    return True


def count_batch_items(conn: sqlite3.Connection, batch_id: int) -> int:
    """How many lines (items) a batch has locally."""
    row = conn.execute("SELECT count(*) FROM batch_items WHERE batch_id = ?", (batch_id,))
    return int(row.fetchone()[0])


@dataclass(frozen=True, slots=True)
class ErrorMatch:
    """Batch-item errors to single out: any of these HTTP statuses or error codes."""

    status_codes: tuple[int, ...] = ()
    error_codes: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        """A condition on items `i` (never NULL: items without an error do not match)."""
        parts, params = ["0"], list[Any]()
        for column, values in (
            ("status_code", self.status_codes),
            ("error_code", self.error_codes),
        ):
            if values:
                parts.append(f"coalesce(i.{column} IN ({','.join('?' * len(values))}), 0)")
                params.extend(values)
        return f"({' OR '.join(parts)})", params


def _owned_items(outcomes: Sequence[str]) -> str:
    """Items of batch `?` of these outcomes whose job that batch still owns (`i`, `j`)."""
    return (
        "FROM batch_items i JOIN jobs j ON j.id = i.job_id WHERE i.batch_id = ? "
        f"AND j.batch_id = i.batch_id AND i.outcome IN ({','.join('?' * len(outcomes))})"
    )


def resubmit_items(
    conn: sqlite3.Connection,
    parent_id: int,
    child_id: int,
    outcomes: Sequence[str],
    now: float,
    *,
    leave_out: ErrorMatch = ErrorMatch(),
) -> int:
    """Give a child batch the parent's items of these outcomes, and move their jobs to it.

    Jobs go back to pending under the child (one more attempt); only jobs still owned by
    the parent move, and none whose item error matches `leave_out`. Returns how many lines
    the child has.
    """
    skip, skip_params = leave_out.sql()
    conn.execute(
        f"INSERT INTO batch_items (batch_id, custom_id, job_id, line_no) "
        f"SELECT ?, i.custom_id, i.job_id, row_number() OVER (ORDER BY i.line_no, i.custom_id) "
        f"{_owned_items(outcomes)} AND NOT {skip}",
        (child_id, parent_id, *outcomes, *skip_params),
    )
    moved = "SELECT job_id FROM batch_items WHERE batch_id = ?"
    conn.execute(
        f"INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
        f"SELECT ?, 'resubmitted', id, ?, queue, 'batch ' || ? || ' → ' || ? "
        f"FROM jobs WHERE id IN ({moved})",
        (now, child_id, parent_id, child_id, child_id),
    )
    conn.execute(
        f"UPDATE jobs SET batch_id = ?, status = 'pending', attempts = attempts + 1, "
        f"max_attempts = max(max_attempts, attempts + 1), error = NULL, "
        f"error_kind = NULL, input_tokens = NULL, output_tokens = NULL, cost = NULL, "
        f"finished_at = NULL, updated_at = ? WHERE id IN ({moved})",
        (child_id, now, child_id),
    )
    conn.execute(f"DELETE FROM job_results WHERE job_id IN ({moved})", (child_id,))
    total = count_batch_items(conn, child_id)
    update_batch(conn, child_id, {"total": total}, now)
    return total


def resubmittable_counts(
    conn: sqlite3.Connection, batch_id: int, outcomes: Sequence[str], special: ErrorMatch
) -> tuple[int, int]:
    """(lines a resubmit would send, how many of them match `special`), jobs still owned."""
    match, params = special.sql()
    row = conn.execute(
        f"SELECT count(*), coalesce(sum({match}), 0) {_owned_items(outcomes)}",
        (*params, batch_id, *outcomes),
    ).fetchone()
    return int(row[0]), int(row[1])


def remote_job_batches(conn: sqlite3.Connection, flt: JobFilter) -> dict[int, int]:
    """Batch id → how many of the failed/cancelled jobs matching `flt` that batch ran."""
    where, params = _where(flt)
    rows = conn.execute(
        f"SELECT j.batch_id, count(*) FROM jobs j WHERE j.status IN ('failed', 'cancelled') "
        f"AND j.batch_id IS NOT NULL AND {where} GROUP BY j.batch_id ORDER BY j.batch_id",
        params,
    )
    return {r[0]: r[1] for r in rows}


def settled_batches(conn: sqlite3.Connection, batch_ids: Sequence[int]) -> set[int]:
    """Those of these batches that were resubmitted and own no failed job any more."""
    if not batch_ids:
        return set()
    rows = conn.execute(
        f"SELECT b.id FROM batches b WHERE b.id IN ({','.join('?' * len(batch_ids))}) "
        "AND EXISTS (SELECT 1 FROM batches c WHERE c.parent_id = b.id) "
        "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.status = 'failed')",
        list(batch_ids),
    )
    return {r[0] for r in rows}


def batch_children(conn: sqlite3.Connection, batch_id: int) -> list[int]:
    """Local ids of the batches resubmitted from this one."""
    rows = conn.execute("SELECT id FROM batches WHERE parent_id = ? ORDER BY id", (batch_id,))
    return [r[0] for r in rows]


#: Batches a poll cycle has work on: submitted and still active, or finished but not ingested.
_POLL_WORK = (
    "(state IN ('validating', 'running', 'finalizing', 'cancelling', 'unknown') OR "
    f"(ingested_at IS NULL AND state IN {_TERMINAL_BATCH_STATES}))"
)


def batches_due(conn: sqlite3.Connection, now: float) -> list[Batch]:
    """Submitted batches to poll now, and finished ones whose results are not in yet."""
    rows = conn.execute(
        f"SELECT * FROM batches WHERE (next_poll_at IS NULL OR next_poll_at <= ?) "
        f"AND {_POLL_WORK} ORDER BY coalesce(next_poll_at, 0), id",
        (now,),
    )
    return [_batch(r) for r in rows]


def claim_batch_poll(
    conn: sqlite3.Connection,
    batch_id: int,
    owner: str,
    until: float,
    now: float,
    dead_owner: str | None = None,
) -> Batch | None:
    """Take the poll lease of a batch still due, in one compare-and-set UPDATE.

    Free when nobody holds it, its lease expired, we hold it, or its holder is
    `dead_owner` (a process the caller saw die). Returns the batch as it is now (never a
    stale read), or None when another poller has it or it needs no more work.
    """
    row = conn.execute(
        f"UPDATE batches SET poll_owner = ?, poll_lease_until = ? WHERE id = ? "
        f"AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {_POLL_WORK} "
        f"AND (poll_owner IS NULL OR poll_lease_until < ? OR poll_owner = ? OR poll_owner = ?) "
        f"RETURNING *",
        (owner, until, batch_id, now, now, owner, dead_owner or owner),
    ).fetchone()
    return None if row is None else _batch(row)


def renew_batch_poll(conn: sqlite3.Connection, batch_id: int, owner: str, until: float) -> bool:
    """Extend our poll lease; False when another poller took the batch over."""
    return bool(
        conn.execute(
            "UPDATE batches SET poll_lease_until = ? WHERE id = ? AND poll_owner = ?",
            (until, batch_id, owner),
        ).rowcount
    )


def release_batch_poll(conn: sqlite3.Connection, batch_id: int, owner: str) -> None:
    """Give the poll lease back, if this owner still holds it."""
    conn.execute(
        "UPDATE batches SET poll_owner = NULL, poll_lease_until = NULL "
        "WHERE id = ? AND poll_owner = ?",
        (batch_id, owner),
    )


def submitting_batches(conn: sqlite3.Connection) -> list[Batch]:
    """Batches whose submission has not been confirmed by the provider yet."""
    rows = conn.execute("SELECT * FROM batches WHERE state = 'submitting' ORDER BY id")
    return [_batch(r) for r in rows]


def known_remote_ids(conn: sqlite3.Connection) -> set[str]:
    """Every provider batch id already tracked locally."""
    rows = conn.execute("SELECT remote_id FROM batches WHERE remote_id IS NOT NULL")
    return {r[0] for r in rows}


def get_submit_lease(conn: sqlite3.Connection, batch_id: int) -> tuple[str, float] | None:
    """(owner, expires_at) of whoever is submitting this batch, if anyone."""
    row = conn.execute(
        "SELECT owner, expires_at FROM batch_submit_leases WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def put_submit_lease(
    conn: sqlite3.Connection, batch_id: int, owner: str, expires_at: float
) -> None:
    """Take or extend the right to submit this batch (the caller checked it may)."""
    conn.execute(
        "INSERT INTO batch_submit_leases (batch_id, owner, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (batch_id) DO UPDATE SET owner = excluded.owner, "
        "expires_at = excluded.expires_at",
        (batch_id, owner, expires_at),
    )


def drop_submit_lease(conn: sqlite3.Connection, batch_id: int, owner: str) -> None:
    """Release the submit lease if this owner still holds it."""
    conn.execute(
        "DELETE FROM batch_submit_leases WHERE batch_id = ? AND owner = ?", (batch_id, owner)
    )


def batch_result_rows(conn: sqlite3.Connection, batch_id: int) -> Iterator[dict[str, Any]]:
    """Each item of a batch with its job's current result, in line order, streamed."""
    for row in conn.execute(
        "SELECT i.custom_id, i.line_no, i.outcome, i.status_code, i.error_code, "
        "i.error_message, i.input_tokens, i.output_tokens, i.cost, i.job_id, j.status, "
        "r.result FROM batch_items i LEFT JOIN jobs j ON j.id = i.job_id "
        "LEFT JOIN job_results r ON r.job_id = i.job_id "
        "WHERE i.batch_id = ? ORDER BY i.line_no, i.custom_id",
        (batch_id,),
    ):
        data = dict(row)
        data["result"] = _loads(data["result"])
        yield data
