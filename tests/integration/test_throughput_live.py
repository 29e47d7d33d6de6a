"""The header's throughput against real worker processes: within seconds of the start of a
steady run it shows the rate the workers actually reach, and the ETA that follows from it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from batchdash.core import snapshot
from batchdash.core.db import open_sync_store
from batchdash.core.errors import StoreError
from tests.conftest import cli, spawn, wait_until

JOBS = 20_000
WORKER = ("--heartbeat", "0.2", "--poll", "0.05", "--concurrency", "4", "--sim-latency", "0.01")


def succeeded(db: Path) -> tuple[float, int]:
    """(when, how many jobs have succeeded) read together."""
    with open_sync_store(db, readonly=True) as s:
        return time.time(), s.tx.stats.status_totals().get("succeeded", 0)


def live_workers(db: Path) -> list[str]:
    try:
        with open_sync_store(db, readonly=True) as s:
            return [w.id for w in s.tx.workers.list_workers() if w.state in ("idle", "busy")]
    except StoreError:  # the first worker is still creating the database
        return []


def test_shown_rate_is_the_true_rate_within_seconds(tmp_path: Path, db_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    lines = (json.dumps({"key": f"j{i}", "payload": {}}) + "\n" for i in range(JOBS))
    jobs.write_text("".join(lines))
    workers = [spawn("worker", "--db", str(db_path), *WORKER) for _ in range(2)]
    try:
        # Both workers poll before the jobs arrive, so the run is steady from its start.
        wait_until(lambda: len(live_workers(db_path)) == 2, timeout=30, what="2 workers")
        cli("enqueue", str(jobs), "--db", str(db_path), "--handler", "sim")
        wait_until(lambda: succeeded(db_path)[1] >= 50, timeout=30, what="the first jobs")
        started, first = succeeded(db_path)
        # Measure the true rate over a few seconds of the steady run, then read the header.
        wait_until(lambda: time.time() - started >= 4, timeout=10, what="4 s of work")
        ended, last = succeeded(db_path)
        assert last < JOBS, "the run ended before the measurement did"
        true_rate = (last - first) / (ended - started) * 60
        with open_sync_store(db_path, readonly=True) as s:
            head = snapshot.overview(s.tx, time.time())
        assert head.rate_per_minute == pytest.approx(true_rate, rel=0.25)
        assert head.eta_seconds is not None and head.eta_note is None
        waiting = JOBS - last
        assert head.eta_seconds == pytest.approx(waiting / true_rate * 60, rel=0.3)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)
    data = json.loads(cli("--db", str(db_path), "--once", "--json").stdout)["jobs"]
    assert data["eta_seconds"] is None and data["eta_note"] == "no live worker"
