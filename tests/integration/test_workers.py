"""Real worker processes on a real SQLite file: exactly-once success, crash rescue, drain,
retries, cancel, pause, and fencing of a worker that lost its lease."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchdash.core.db import open_sync_store
from batchdash.core.models import Job
from batchdash.core.qa_models import QAResult
from tests.conftest import cli, spawn, wait_until

FAST_WORKER = ("--heartbeat", "0.2", "--poll", "0.05", "--retry-base", "0.05")


def write_jobs(path: Path, n: int, prefix: str = "job", **payload: object) -> Path:
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"key": f"{prefix}-{i:05d}", "payload": {"i": i, **payload}}))
            out.write("\n")
    return path


def job_rows(db: Path) -> list[Job]:
    with open_sync_store(db) as s:
        return s.tx.jobs.list_jobs()


def job(db: Path, job_id: int) -> Job:
    with open_sync_store(db) as s:
        return s.tx.jobs.get_job(job_id)


def event_kinds(db: Path, job_id: int) -> list[str]:
    with open_sync_store(db) as s:
        return [e.kind for e in s.tx.events.list_events(job_id)]


def succeeded_events(db: Path) -> dict[int, int]:
    with open_sync_store(db) as s:
        rows = s.conn.execute(
            "SELECT job_id, count(*) FROM events WHERE kind = 'succeeded' GROUP BY job_id"
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def test_four_workers_run_8000_jobs_each_exactly_once(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "jobs.jsonl", 8000)),
        "--db",
        str(db_path),
    )
    workers = [
        spawn(
            "worker",
            "--db",
            str(db_path),
            "--concurrency",
            "16",
            "--sim-latency",
            "0",
            "--idle-exit",
            "1",
            *FAST_WORKER,
        )
        for _ in range(4)
    ]
    for proc in workers:
        assert proc.wait(timeout=120) == 0, proc.stdout.read() if proc.stdout else ""
    rows = job_rows(db_path)
    assert len(rows) == 8000
    assert {r.status for r in rows} == {"succeeded"}
    assert {r.attempts for r in rows} == {1}
    assert set(succeeded_events(db_path).values()) == {1}
    assert len(succeeded_events(db_path)) == 8000
    with open_sync_store(db_path) as s:
        workers_seen = {w.id: w for w in s.tx.workers.list_workers()}
    assert len(workers_seen) == 4
    assert sum(w.done for w in workers_seen.values()) == 8000
    assert {w.state for w in workers_seen.values()} == {"stopped"}


def test_kill_9_mid_job_loses_nothing(tmp_path: Path, db_path: Path) -> None:
    jobs_file = write_jobs(tmp_path / "slow.jsonl", 4, sim={"latency": 1.5})
    cli("enqueue", "--handler", "sim", str(jobs_file), "--db", str(db_path))
    victim = spawn(
        "worker", "--db", str(db_path), "--concurrency", "4", "--lease", "1", *FAST_WORKER
    )
    wait_until(lambda: all(r.status == "running" for r in job_rows(db_path)), 30, what="claims")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    # No --idle-exit: the rescuer may start idle before the dead worker's leases expire.
    rescuer = spawn(
        "worker", "--db", str(db_path), "--concurrency", "4", "--lease", "1", *FAST_WORKER
    )
    wait_until(lambda: {r.status for r in job_rows(db_path)} == {"succeeded"}, 60, what="rescue")
    rescuer.send_signal(signal.SIGTERM)
    assert rescuer.wait(timeout=60) == 0
    rows = job_rows(db_path)
    assert {r.status for r in rows} == {"succeeded"}
    assert {r.attempts for r in rows} == {2}
    assert set(succeeded_events(db_path).values()) == {1}
    assert "rescued" in event_kinds(db_path, rows[0].id)
    listing = cli("workers", "list", "--db", str(db_path), "--json")
    states = sorted(w["state"] for w in json.loads(listing.stdout)["workers"])
    assert states == ["dead", "stopped"]


def test_sigterm_drains_in_flight_jobs(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "a.jsonl", 2, sim={"latency": 0.6})),
        "--db",
        str(db_path),
    )
    worker = spawn(
        "worker", "--db", str(db_path), "--concurrency", "2", "--grace", "20", *FAST_WORKER
    )
    wait_until(lambda: all(r.status == "running" for r in job_rows(db_path)), 30)
    assert stop(worker) == 0
    assert {r.status for r in job_rows(db_path)} == {"succeeded"}


def test_sigterm_past_grace_releases_jobs_to_pending(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "a.jsonl", 1, sim={"latency": 30})),
        "--db",
        str(db_path),
    )
    worker = spawn("worker", "--db", str(db_path), "--grace", "0.2", *FAST_WORKER)
    wait_until(lambda: job_rows(db_path)[0].status == "running", 30)
    assert stop(worker) == 0
    (row,) = job_rows(db_path)
    assert (row.status, row.attempts, row.claim_token) == ("pending", 0, None)
    assert event_kinds(db_path, row.id)[-1] == "released"


def test_failing_job_retries_with_growing_delays_then_fails(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "f.jsonl", 1, sim={"fail": "retryable"})),
        "--db",
        str(db_path),
        "--max-attempts",
        "4",
    )
    worker = spawn("worker", "--db", str(db_path), "--idle-exit", "1.5", *FAST_WORKER)
    assert worker.wait(timeout=60) == 0
    (row,) = job_rows(db_path)
    assert (row.status, row.attempts, row.error_kind) == ("failed", 4, "sim_transient")
    with open_sync_store(db_path) as s:
        events = s.tx.events.list_events(row.id)
    claims = [e.at for e in events if e.kind == "claimed"]
    gaps = [b - a for a, b in itertools.pairwise(claims)]
    assert len(gaps) == 3
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert [e.kind for e in events].count("retry_scheduled") == 3


def test_cancelling_a_running_job_stops_it(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "c.jsonl", 1, sim={"latency": 60})),
        "--db",
        str(db_path),
    )
    worker = spawn("worker", "--db", str(db_path), *FAST_WORKER)
    try:
        wait_until(lambda: job_rows(db_path)[0].status == "running", 30)
        out = cli("cancel", "1", "--db", str(db_path))
        assert "1 running jobs will stop" in out.stdout
        wait_until(lambda: job_rows(db_path)[0].status == "cancelled", 10, what="cancel")
    finally:
        assert stop(worker) == 0
    assert event_kinds(db_path, 1)[-2:] == ["cancel_requested", "cancelled"]


def test_paused_queue_is_not_claimed(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "p.jsonl", 3)),
        "--db",
        str(db_path),
        "--queue",
        "papers",
    )
    cli("queue", "pause", "papers", "--db", str(db_path))
    idle = spawn("worker", "--db", str(db_path), "--idle-exit", "0.5", *FAST_WORKER)
    assert idle.wait(timeout=30) == 0
    assert {r.status for r in job_rows(db_path)} == {"pending"}
    cli("resume", "--queue", "papers", "--db", str(db_path))
    busy = spawn("worker", "--db", str(db_path), "--idle-exit", "0.5", *FAST_WORKER)
    assert busy.wait(timeout=30) == 0
    assert {r.status for r in job_rows(db_path)} == {"succeeded"}


def freeze_between_transactions(
    proc: subprocess.Popen[str], db_path: Path, timeout: float = 10
) -> None:
    """SIGSTOP a worker at a moment it holds no write lock.

    A process frozen inside a transaction stalls every other writer until it wakes (that
    is SQLite, not what the test is about), so retry until the lock is free while frozen.
    """
    deadline = time.monotonic() + timeout
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        probe = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            os.kill(proc.pid, signal.SIGCONT)
            assert time.monotonic() < deadline, "the worker never left its transaction"
            time.sleep(0.005)
        finally:
            probe.close()


@pytest.mark.sqlite_only
def test_stale_worker_cannot_complete_a_reclaimed_job(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "s.jsonl", 1, sim={"latency": 1.0})),
        "--db",
        str(db_path),
    )
    stale = spawn("worker", "--db", str(db_path), "--lease", "0.5", *FAST_WORKER)
    try:
        wait_until(lambda: job_rows(db_path)[0].status == "running", 30)
        first_claim = job_rows(db_path)[0].worker_id
        freeze_between_transactions(stale, db_path)  # no heartbeats: the lease runs out
        try:
            fresh = spawn(
                "worker", "--db", str(db_path), "--lease", "5", "--idle-exit", "1", *FAST_WORKER
            )
            assert fresh.wait(timeout=60) == 0
        finally:
            os.kill(stale.pid, signal.SIGCONT)
        # The frozen worker wakes, finishes its (now stale) attempt and tries to report it.
    finally:
        assert stop(stale) == 0
    (row,) = job_rows(db_path)
    assert row.status == "succeeded" and row.worker_id != first_claim
    assert succeeded_events(db_path) == {1: 1}


def test_workers_start_list_stop(tmp_path: Path, db_path: Path) -> None:
    try:
        out = cli("workers", "start", "-n", "2", "--db", str(db_path), *FAST_WORKER)
        assert out.stdout.startswith("started 2 workers")
        listing = json.loads(cli("workers", "list", "--json", "--db", str(db_path)).stdout)[
            "workers"
        ]
        assert len(listing) == 2 and {w["state"] for w in listing} <= {"idle", "busy"}
    finally:  # detached workers outlive a failed test unless stopped here
        stopped = cli("workers", "stop", "--db", str(db_path)).stdout
    assert stopped == "stopped 2 workers\n"
    listing = json.loads(cli("workers", "list", "--json", "--db", str(db_path)).stdout)["workers"]
    assert {w["state"] for w in listing} == {"stopped"}


def test_bad_input_is_a_one_line_error_and_changes_nothing(tmp_path: Path, db_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a", "payload": 1}\n{"key": \n')
    result = cli("enqueue", "--handler", "sim", str(bad), "--db", str(db_path), check=False)
    assert result.returncode == 2
    assert f"{bad}:2: invalid JSON" in result.stderr
    assert not db_path.exists()  # a refused file creates nothing, not even the database
    cli("init", "--db", str(db_path))
    for args, message in (
        (("jobs", "show", "7"), "unknown job id 7"),
        (("retry", "7"), "unknown job id 7"),
        (("queue", "pause", "nope"), "unknown queue 'nope'"),
        (("enqueue", str(bad), "--handler", "nothing"), "unknown handler 'nothing'"),
    ):
        result = cli(*args, "--db", str(db_path), check=False)
        assert result.returncode == 2, args
        assert result.stderr.strip() == f"batchdash: error: {message}" or message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_export_csv_and_events(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "e.jsonl", 3)),
        "--db",
        str(db_path),
    )
    out = tmp_path / "jobs.csv"
    cli("export", "--format", "csv", "-o", str(out), "--db", str(db_path))
    lines = out.read_text().splitlines()
    assert lines[0].startswith("id,key,queue,status,attempts") and len(lines) == 4
    events = cli("export", "--events", "--db", str(db_path)).stdout.splitlines()
    assert [json.loads(e)["kind"] for e in events] == ["enqueued"] * 3


@pytest.mark.sqlite_only
def test_a_locked_database_is_waited_out(tmp_path: Path, db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(1.5)\n"
            "c.execute('COMMIT')",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    result = cli(
        "--db",
        str(db_path),
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "l.jsonl", 2)),
    )
    assert result.stdout == "enqueued 2 jobs into 'default' with handler sim\n"
    assert result.stderr == ""
    assert holder.wait(timeout=10) == 0


def test_jobs_show_includes_qa_verdicts(tmp_path: Path, db_path: Path) -> None:
    cli(
        "enqueue",
        "--handler",
        "sim",
        str(write_jobs(tmp_path / "q.jsonl", 1)),
        "--db",
        str(db_path),
    )
    verdict = QAResult(
        job_id=1,
        judge="judge-a",
        scores={"overall": 8.0, "fluency": 9.0},
        comment="fine",
        error=None,
        raw=None,
        input_tokens=10,
        output_tokens=5,
        cost=None,
        created_at=1.0,
    )
    with open_sync_store(db_path) as s:
        s.write(lambda conn: conn.qa.save_qa_result(verdict, replace=False))
    shown = json.loads(cli("jobs", "show", "1", "--json", "--db", str(db_path)).stdout)
    assert [(q["judge"], q["overall"]) for q in shown["qa"]] == [("judge-a", 8.0)]
    text = cli("jobs", "show", "1", "--db", str(db_path)).stdout
    assert "judge-a: overall 8" in text and "qa_scored" in text
