"""`workers start|stop` with real processes: PID-file identity, logs named after the worker,
private file modes, option ranges, and a start that keeps healthy workers when one dies."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.db import DbLocation
from batchdash.core.worker import pid_dir
from tests.conftest import cli, spawn, wait_until


def workers_dir(db_path: Path) -> Path:
    """Where this host keeps the PID files and logs of the database's workers."""
    return pid_dir(DbLocation(path=db_path))


FAST_WORKER = ("--heartbeat", "0.2", "--poll", "0.05", "--retry-base", "0.05")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process whose pid a stale PID file will name."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def worker_ids(db_path: Path) -> list[str]:
    listing = json.loads(cli("workers", "list", "--json", "--db", str(db_path)).stdout)["workers"]
    return [w["id"] for w in listing]


def children_of(parent: int) -> list[int]:
    """Pids whose parent is `parent` (from /proc/PID/stat field 4)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def kill_orphans(pids: list[int]) -> None:
    """Workers a failed start left behind (still ours: their command line says so)."""
    for pid in pids:
        try:
            if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def test_stop_never_signals_a_process_that_got_a_dead_workers_pid(
    db_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    cli("init", "--db", str(db_path))
    folder = workers_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True)
    recorded = {
        "pid": sleeper.pid,
        "start_ticks": 1,
        "cmdline": [sys.executable, "-m", "batchdash", "worker"],
    }
    (folder / "box-111-aaaa.pid").write_text(json.dumps(recorded) + "\n")
    legacy = folder / "box-222-bbbb.pid"  # the plain form older versions wrote
    legacy.write_text(f"{sleeper.pid}\n")
    an_hour_ago = time.time() - 3600
    os.utime(legacy, (an_hour_ago, an_hour_ago))

    out = cli("workers", "stop", "--db", str(db_path), "--timeout", "2").stdout

    assert sleeper.poll() is None, "an unrelated process was signalled"
    reused = f"(pid {sleeper.pid} reused by another process)"
    assert out.splitlines() == [
        f"removed stale pid file for worker box-111-aaaa {reused}",
        f"removed stale pid file for worker box-222-bbbb {reused}",
        "no workers running",
    ]
    assert list(folder.glob("*.pid")) == []


def test_stop_removes_the_pid_file_of_a_killed_worker_and_says_so(db_path: Path) -> None:
    worker = spawn("worker", "--db", str(db_path), *FAST_WORKER)
    try:
        wait_until(lambda: list(workers_dir(db_path).glob("*.pid")), 30, what="pid file")
        (pid_file,) = workers_dir(db_path).glob("*.pid")
    finally:
        worker.kill()
        worker.wait(timeout=10)
    out = cli("workers", "stop", "--db", str(db_path)).stdout
    assert out.splitlines() == [
        f"removed stale pid file for worker {pid_file.stem} (process gone)",
        "no workers running",
    ]
    assert not pid_file.exists()


def test_worker_log_is_named_after_its_id_and_holds_its_lines(
    tmp_path: Path, db_path: Path, stop_workers: None
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"key": f"k{i}", "payload": {}}) + "\n" for i in range(3)))
    cli("enqueue", str(jobs), "--db", str(db_path), "--handler", "sim")
    started = cli("workers", "start", "--db", str(db_path), *FAST_WORKER).stdout
    (worker_id,) = worker_ids(db_path)
    log = workers_dir(db_path) / f"worker-{worker_id}.log"
    assert str(log) in started
    assert mode(log) == 0o600
    assert mode(workers_dir(db_path) / f"{worker_id}.pid") == 0o600
    wait_until(
        lambda: (
            "succeeded" in cli("jobs", "list", "--db", str(db_path)).stdout
            and "pending" not in cli("jobs", "list", "--db", str(db_path)).stdout
        ),
        30,
        what="jobs done",
    )
    assert cli("workers", "stop", "--db", str(db_path)).stdout == "stopped 1 workers\n"

    lines = log.read_text().splitlines()
    assert any(worker_id in line and "start" in line for line in lines), lines
    assert any(worker_id in line and "stop" in line for line in lines), lines
    assert [p.name for p in workers_dir(db_path).glob("*.log")] == [log.name]


def test_export_file_is_private(tmp_path: Path, db_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"key": "a", "payload": {}}) + "\n")
    cli("enqueue", str(jobs), "--db", str(db_path), "--handler", "sim")
    out = tmp_path / "jobs.csv"
    out.write_text("old export, readable by all\n")
    out.chmod(0o644)
    cli("export", "--format", "csv", "-o", str(out), "--db", str(db_path))
    assert mode(out) == 0o600
    assert out.read_text().startswith("id,key")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("worker", "--lease", "-1"), "--lease"),
        (("worker", "--poll", "0"), "--poll"),
        (("worker", "--grace", "-1"), "--grace"),
        (("worker", "--heartbeat", "0"), "--heartbeat"),
        (("worker", "--concurrency", "0"), "--concurrency"),
        (("worker", "--queue", ""), "--queue"),
        (("worker", "--sim-failure-rate", "1.5"), "--sim-failure-rate"),
        (("worker", "--lease", "0.1", "--heartbeat", "0.2"), "--lease"),
        (("workers", "start", "-n", "-1"), "-n"),
        (("workers", "start", "--poll", "0.001"), "--poll"),
        (("workers", "stop", "--timeout", "-5"), "--timeout"),
    ],
)
def test_harmful_worker_options_are_refused(
    db_path: Path, args: tuple[str, ...], option: str
) -> None:
    result = cli(*args, "--db", str(db_path), check=False, timeout=15)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"{option}" in line and "error" in line, line
    assert "Traceback" not in result.stderr
    assert not workers_dir(db_path).exists() and not db_path.exists()


@pytest.mark.sqlite_only
def test_start_keeps_healthy_workers_when_a_sibling_dies_starting(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    # Hold the write lock so both workers wait before registering; kill one meanwhile.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db_path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.readline()\n"
            "c.execute('COMMIT')",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    start = None
    spawned: list[int] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        start = spawn("workers", "start", "-n", "2", "--db", str(db_path), *FAST_WORKER)
        wait_until(lambda: len(children_of(start.pid)) == 2, 30, what="2 workers spawned")
        spawned = sorted(children_of(start.pid))
        victim, healthy = spawned
        os.kill(victim, signal.SIGKILL)
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        out = start.stdout.read() if start.stdout else ""
        assert start.wait(timeout=60) == 2, out
        assert "started 1 of 2 workers" in out
        assert f"worker pid {victim} exited while starting (killed by SIGKILL)" in out
        assert os.path.exists(f"/proc/{healthy}")
        listing = json.loads(cli("workers", "list", "--json", "--db", str(db_path)).stdout)[
            "workers"
        ]
        assert [(w["pid"], w["state"]) for w in listing] == [(healthy, "idle")]
    finally:
        if start is not None and start.poll() is None:
            start.kill()
        holder.kill()
        holder.wait(timeout=10)
        cli("workers", "stop", "--db", str(db_path), check=False)
        kill_orphans(spawned)
    assert cli("workers", "stop", "--db", str(db_path)).stdout == "no workers running\n"
