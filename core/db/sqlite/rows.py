"""SQLite-only row helpers: the job SELECT with its error cut, and event inserts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from batchdash.core.db.sqlevents import insert_events
from batchdash.core.db.sqlshared import (
    _JOBS_WITH_BODIES,
    _JOBS_WITHOUT_BODIES,
    LIST_ERROR_CHARS,
    same_sql,
)


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


def _event_rows(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert (at, kind, job_id, batch_id, queue, worker_id, detail) event rows."""
    insert_events(conn, same_sql, rows)
