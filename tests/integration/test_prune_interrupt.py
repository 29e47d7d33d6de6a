"""Ctrl-C during a real `batchdash prune`: it stops between two transactions, exits 130
with the count removed so far, and every job is either gone with all its rows or kept with
all of them (events, payload, result, tags), with the dashboard's counts true."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from batchdash.core.models import NewJob, Outcome
from batchdash.core.prune import CHUNK
from tests.conftest import cli, open_db, spawn, wait_until

#: Enough transactions (of CHUNK jobs) that Ctrl-C lands while most are still to come.
JOBS = 30 * CHUNK
#: What each seeded job has besides its row: 3 events (enqueued, claimed, finished), one
#: payload, one result and one tag.
PER_JOB = {"events": 3, "job_payloads": 1, "job_results": 1, "job_tags": 1}


def seed_finished_jobs(db: Path, n: int, finished_at: float) -> None:
    """`n` tagged jobs, succeeded at `finished_at`, written through the store."""
    cli("init", "--db", str(db))
    new = [NewJob(f"k{i}", {"i": i}, tags=("bulk",)) for i in range(n)]
    with open_db(db) as s:
        s.write(lambda tx: tx.jobs.enqueue("bulk", "noop", new, finished_at, None))
        s.write(lambda tx: tx.tags.tag_jobs("bulk", new))
        claims = s.write(lambda tx: tx.jobs.claim("w", "tok", n, 60.0, (), time.time()))
        ends = [Outcome(c.job_id, "tok", "succeeded", finished_at, '"r"') for c in claims]
        s.write(lambda tx: tx.jobs.finish("w", ends))


def count(db: Path, sql: str) -> int:
    """One number from the database file, read beside the running prune."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_ctrl_c_stops_a_prune_between_transactions(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    seed_finished_jobs(db, JOBS, time.time() - 2 * 86400)
    proc = spawn("prune", "--older-than", "1d", "--db", str(db))
    try:
        # Interrupt once the first transaction has committed, with most still to go.
        wait_until(
            lambda: count(db, "SELECT count(*) FROM jobs") < JOBS or proc.poll() is not None,
            timeout=60,
            interval=0.005,
            what="the first pruned transaction",
        )
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = count(db, "SELECT count(*) FROM jobs")
    removed = JOBS - kept
    assert proc.returncode == 130, output
    assert 0 < removed < JOBS and removed % CHUNK == 0  # whole transactions only
    said, _, cutoff = output.partition(" (finished before ")
    assert said == (
        f"interrupted: removed {removed:,} jobs, {3 * removed:,} events, 0 QA verdicts, "
        f"0 batch lines, {removed:,} tags, 0 batches"
    )
    assert cutoff.endswith(") before the interrupt; the rest is untouched\n")
    # Oldest ids first, whole jobs: what is left is the newest jobs, each with all its rows.
    assert count(db, "SELECT min(id) FROM jobs") == removed + 1
    for table, per_job in PER_JOB.items():
        assert count(db, f"SELECT count(*) FROM {table}") == per_job * kept, table
        orphans = f"SELECT count(*) FROM {table} WHERE job_id NOT IN (SELECT id FROM jobs)"
        assert count(db, orphans) == 0, table
    picture = json.loads(cli("--once", "--json", "--db", str(db)).stdout)["jobs"]
    assert picture["total"] == kept and picture["by_status"]["succeeded"] == kept
