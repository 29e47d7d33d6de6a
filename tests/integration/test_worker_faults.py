"""A job's faults stay with the job: handlers that exit, hang, block the loop or return
too much fail their own attempt, never their worker or the jobs beside them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from batchdash.core.db import open_sync_store
from batchdash.core.models import Job
from tests.conftest import cli, cli_env, spawn, wait_until

FAST = ("--heartbeat", "0.2", "--poll", "0.02", "--retry-base", "0.05")
HANDLER = "faultyjobs.handlers:run"

HANDLER_SOURCE = '''
"""Test handlers that misbehave on demand (payload {"do": ...})."""
import asyncio
import time


async def run(job):
    do = job.payload.get("do", "ok")
    if do == "exit":
        raise SystemExit(3)
    if do == "interrupt":
        raise KeyboardInterrupt
    if do == "base":
        raise BaseException("not an Exception")
    if do == "big":
        return "x" * job.payload["size"]
    if do == "big_error":
        raise RuntimeError("e" * job.payload["size"])
    if do == "hang" or (do == "hang_after_first" and job.attempt > 1):
        await asyncio.Event().wait()
    if do == "hang_after_first":
        raise RuntimeError("first attempt fails")
    if do == "slow":
        await asyncio.sleep(job.payload["seconds"])
    if do == "block":
        time.sleep(job.payload["seconds"])
    return {"ok": job.key}
'''


@pytest.fixture
def handler_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with a `faultyjobs` package holding the misbehaving handler."""
    package = tmp_path / "lib" / "faultyjobs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handlers.py").write_text(textwrap.dedent(HANDLER_SOURCE))
    return {"PYTHONPATH": str(tmp_path / "lib")}


def enqueue(
    tmp_path: Path, db: Path, env: dict[str, str], lines: list[dict[str, object]], *extra: str
) -> None:
    path = tmp_path / f"jobs-{len(list(tmp_path.glob('jobs-*')))}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cli("enqueue", str(path), "--db", str(db), "--handler", HANDLER, *extra, **env)


def jobs_by_key(db: Path) -> dict[str, Job]:
    with open_sync_store(db) as s:
        return {job.key: job for job in s.tx.jobs.list_jobs()}


def worker(db: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return spawn("worker", "--db", str(db), *FAST, *extra, **env)


def output(proc: subprocess.Popen[str]) -> str:
    return proc.stdout.read() if proc.stdout else ""


def test_handler_exit_fails_its_job_and_the_pool_lives_on(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    bad = {"exit", "interrupt", "base"}
    lines = [{"key": f"ok-{i:02d}", "payload": {}} for i in range(30)]
    lines += [{"key": f"bad-{do}", "payload": {"do": do}} for do in sorted(bad)]
    enqueue(tmp_path, db_path, handler_env, lines, "--max-attempts", "2")
    pool = [
        worker(db_path, handler_env, "--concurrency", "4", "--idle-exit", "1") for _ in range(2)
    ]
    for proc in pool:
        # idle-exit 0: each worker outlived the exits and stopped only for lack of work
        assert proc.wait(timeout=60) == 0, output(proc)
    rows = jobs_by_key(db_path)
    for do in bad:
        job = rows.pop(f"bad-{do}")
        assert (job.status, job.error_kind, job.attempts) == ("failed", "handler_exit", 2)
        assert job.error and "handler raised" in job.error
    assert {job.status for job in rows.values()} == {"succeeded"}


def test_oversized_result_fails_that_job_only_and_long_errors_are_truncated(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    lines: list[dict[str, object]] = [{"key": f"ok-{i}", "payload": {}} for i in range(6)]
    lines += [
        {"key": "huge", "payload": {"do": "big", "size": 5000}},
        {"key": "loud", "payload": {"do": "big_error", "size": 5000}},
    ]
    enqueue(tmp_path, db_path, handler_env, lines, "--max-attempts", "1")
    proc = worker(
        db_path,
        handler_env,
        "--concurrency",
        "8",
        "--idle-exit",
        "0.5",
        "--max-result-chars",
        "1000",
        "--max-error-chars",
        "200",
    )
    assert proc.wait(timeout=60) == 0, output(proc)
    rows = jobs_by_key(db_path)
    huge, loud = rows.pop("huge"), rows.pop("loud")
    assert (huge.status, huge.error_kind, huge.result) == ("failed", "result_too_large", None)
    assert huge.error and "5,002 characters" in huge.error
    assert (loud.status, loud.error_kind) == ("failed", "RuntimeError")
    assert loud.error and len(loud.error) < 300 and "[truncated: 5,014 characters" in loud.error
    assert {job.status for job in rows.values()} == {"succeeded"}


def test_job_timeout_cancels_a_hung_handler_and_retries_it(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    slow = {"do": "slow", "seconds": 0.8}
    enqueue(
        tmp_path,
        db_path,
        handler_env,
        [
            {"key": "hung", "payload": {"do": "hang"}},
            {"key": "slow-line-timeout", "payload": slow, "timeout": 10},
        ],
        "--max-attempts",
        "2",
    )
    enqueue(
        tmp_path,
        db_path,
        handler_env,
        [{"key": "slow-cli-timeout", "payload": slow}],
        "--timeout",
        "10",
    )
    proc = worker(db_path, handler_env, "--job-timeout", "0.3", "--idle-exit", "0.5")
    assert proc.wait(timeout=60) == 0, output(proc)
    rows = jobs_by_key(db_path)
    hung = rows["hung"]
    assert (hung.status, hung.error_kind, hung.attempts) == ("failed", "timeout", 2)
    assert hung.error == "no result within 0.3s"
    # A job's own timeout wins over the worker's default.
    assert rows["slow-line-timeout"].status == rows["slow-cli-timeout"].status == "succeeded"


def test_bad_timeout_is_refused_at_parse_time(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"key": "a", "payload": {}}\n')
    out = cli("enqueue", str(path), "--db", str(db_path), "--timeout", "0", check=False)
    assert out.returncode == 2 and "--timeout: must be > 0" in out.stderr
    out = cli("worker", "--db", str(db_path), "--job-timeout", "-1", check=False)
    assert out.returncode == 2 and "must be > 0" in out.stderr
    path.write_text('{"key": "a", "payload": {}, "timeout": "soon"}\n')
    out = cli("enqueue", str(path), "--db", str(db_path), check=False)
    assert out.returncode == 2 and "j.jsonl:1: timeout must be" in out.stderr


def test_second_sigterm_cuts_the_drain_grace(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(tmp_path, db_path, handler_env, [{"key": "slow", "payload": {"do": "hang"}}])
    proc = worker(db_path, handler_env, "--grace", "120")
    wait_until(lambda: jobs_by_key(db_path)["slow"].status == "running", 30, what="claim")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: worker_field(db_path, "state") == ["draining"], 30, what="draining")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, output(proc)
    slow = jobs_by_key(db_path)["slow"]
    assert (slow.status, slow.attempts) == ("pending", 0)


def worker_field(db: Path, field: str) -> list[Any]:
    """One field (state, note…) of every registered worker."""
    with open_sync_store(db) as s:
        return [getattr(w, field) for w in s.tx.workers.list_workers()]


def test_retried_jobs_do_not_show_their_old_error(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(
        tmp_path,
        db_path,
        handler_env,
        [
            {"key": "again", "payload": {"do": "hang_after_first"}},
            {"key": "manual", "payload": {"do": "exit"}, "max_attempts": 1},
        ],
    )
    proc = worker(db_path, handler_env, "--grace", "0.2")
    try:
        # Automatic retry: the second attempt runs without the first one's error.
        wait_until(lambda: jobs_by_key(db_path)["again"].attempts == 2, 30, what="retry")
        again = jobs_by_key(db_path)["again"]
        assert (again.status, again.error, again.error_kind) == ("running", None, None)
        wait_until(lambda: jobs_by_key(db_path)["manual"].status == "failed", 30, what="fail")
    finally:
        assert stop(proc) == 0
    manual = jobs_by_key(db_path)["manual"]
    assert manual.error_kind == "handler_exit"
    cli("retry", str(manual.id), "--db", str(db_path))
    manual = jobs_by_key(db_path)["manual"]
    assert (manual.status, manual.error, manual.error_kind) == ("pending", None, None)
    with open_sync_store(db_path) as s:
        history = [e.detail or "" for e in s.tx.events.list_events(manual.id)]
    assert any("handler_exit" in detail for detail in history)  # the timeline keeps it


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_worker_logs_its_life_to_stderr_with_its_id(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(
        tmp_path,
        db_path,
        handler_env,
        [{"key": "ok", "payload": {}}, {"key": "bad", "payload": {"do": "exit"}}],
        "--max-attempts",
        "2",
    )
    # A job held by a worker that died: its lease is already over, so it gets rescued.
    with open_sync_store(db_path) as s:
        s.write(lambda c: c.jobs.claim("gone-1", "token", 1, -1.0, (), time.time()))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchdash",
            "worker",
            "--db",
            str(db_path),
            *FAST,
            "--idle-exit",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(**handler_env),
    )
    assert proc.returncode == 0 and proc.stdout == ""
    (worker_id,) = [w for w in worker_field(db_path, "id") if w != "gone-1"]
    lines = proc.stderr.splitlines()
    assert all(f" {worker_id} " in line for line in lines), proc.stderr
    text = proc.stderr
    for expected in (
        "started: pid",
        "rescued 1 jobs",
        "attempt 1/2 failed (handler_exit); retry in",
        "attempts exhausted after attempt 2/2 (handler_exit)",
        "draining: 0 jobs in flight",
        "stopped: 1 succeeded, 1 failed",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_a_handler_blocking_the_loop_keeps_its_lease_and_is_reported(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(
        tmp_path, db_path, handler_env, [{"key": "sync", "payload": {"do": "block", "seconds": 2}}]
    )
    blocked = worker(db_path, handler_env, "--lease", "0.6")
    wait_until(lambda: jobs_by_key(db_path)["sync"].status == "running", 30, what="claim")
    # A healthy worker beside it rescues any lease that expires: none may.
    helper = worker(db_path, handler_env, "--idle-exit", "30")
    try:
        job_id = jobs_by_key(db_path)["sync"].id
        wait_until(
            lambda: any(
                f"by job {job_id} (sync)" in (n or "") for n in worker_field(db_path, "note")
            ),
            10,
            what="a 'loop blocked' note",
        )
        listing = cli("workers", "list", "--db", str(db_path)).stdout
        assert "loop blocked" in listing
        wait_until(lambda: jobs_by_key(db_path)["sync"].status == "succeeded", 30, what="end")
        wait_until(lambda: not any(worker_field(db_path, "note")), 10, what="note cleared")
    finally:
        assert stop(blocked) == 0
        assert stop(helper) == 0
    with open_sync_store(db_path) as s:
        kinds = [e.kind for e in s.tx.events.list_events(job_id)]
    assert kinds == ["enqueued", "claimed", "succeeded"]
    assert "event loop blocked" in output(blocked)


def test_stop_is_honoured_while_a_handler_blocks_the_loop(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(
        tmp_path, db_path, handler_env, [{"key": "sync", "payload": {"do": "block", "seconds": 60}}]
    )
    proc = worker(db_path, handler_env, "--grace", "0.5")
    wait_until(lambda: any(worker_field(db_path, "note")), 30, what="a 'loop blocked' note")
    out = cli("workers", "stop", "--db", str(db_path), "--timeout", "15")
    assert "stopped 1 workers" in out.stdout
    assert proc.wait(timeout=5) == 0
    sync = jobs_by_key(db_path)["sync"]
    assert (sync.status, sync.attempts) == ("pending", 0)
    assert worker_field(db_path, "state") == ["stopped"]
    assert "released 1 jobs to pending" in output(proc)


def test_workers_start_passes_the_new_options_through(
    tmp_path: Path, db_path: Path, handler_env: dict[str, str]
) -> None:
    enqueue(
        tmp_path,
        db_path,
        handler_env,
        [{"key": "hung", "payload": {"do": "hang"}}],
        "--max-attempts",
        "1",
    )
    cli(
        "workers",
        "start",
        "--db",
        str(db_path),
        *FAST,
        "--idle-exit",
        "0.5",
        "--job-timeout",
        "0.3",
        "--max-result-chars",
        "100",
        "--max-error-chars",
        "100",
        **handler_env,
    )
    wait_until(lambda: worker_field(db_path, "state") == ["stopped"], 30, what="idle exit")
    hung = jobs_by_key(db_path)["hung"]
    assert (hung.status, hung.error_kind) == ("failed", "timeout")
