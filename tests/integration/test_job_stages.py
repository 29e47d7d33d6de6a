"""Stages and progress from inside jobs, with real worker processes: recorded with their
durations, a failed stage named in the job's error, shown by `jobs show`, `export --events`
and `stats`, and kept across a worker crash (the rescued attempt starts its stages again)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import cli, spawn, wait_until

FAST = ("--heartbeat", "0.2", "--poll", "0.02", "--retry-base", "0.05")


def _enqueue(tmp_path: Path, db: str, lines: list[dict[str, Any]], *extra: str) -> None:
    path = tmp_path / f"jobs-{len(list(tmp_path.glob('jobs-*')))}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cli("enqueue", str(path), "--db", db, "--handler", "sim", "--queue", "papers", *extra)


def _show(db: str, job_id: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli("jobs", "show", str(job_id), "--db", db, "--json").stdout)
    return data


def _worker(db: str) -> subprocess.Popen[str]:
    return spawn("worker", "--db", db, *FAST)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_stages_are_recorded_with_durations_and_a_failed_stage_names_itself(
    tmp_path: Path, any_db: str
) -> None:
    db = any_db
    staged = {"stages": [["fetch", 0.05], ["generate", 0.2], "write"]}
    broken = {**staged, "sim": {"fail": "permanent", "fail_stage": "generate"}}
    _enqueue(tmp_path, db, [{"key": "ok", "payload": staged}, {"key": "bad", "payload": broken}])
    proc = spawn("worker", "--db", db, *FAST, "--idle-exit", "0.5")
    assert proc.wait(timeout=60) == 0

    ok, bad = _show(db, 1), _show(db, 2)
    assert ok["job"]["status"] == "succeeded"
    assert [(s["name"], s["status"]) for s in ok["stages"]] == [
        ("fetch", "finished"),
        ("generate", "finished"),
        ("write", "finished"),
    ]
    assert 0.2 <= ok["stages"][1]["duration"] < 5
    assert (ok["job"]["progress"], ok["job"]["progress_note"]) == (1.0, "3/3 stages")
    assert bad["job"]["error"] == "stage generate: sim: permanent failure of bad"
    assert [(s["name"], s["status"]) for s in bad["stages"]] == [
        ("fetch", "finished"),
        ("generate", "failed"),
    ]
    text = cli("jobs", "show", "2", "--db", db).stdout
    assert "failed: sim: permanent failure of bad" in text
    assert "stage_failed  generate, attempt 1" in text

    events = [
        json.loads(line) for line in cli("export", "--events", "--db", db).stdout.splitlines()
    ]
    kinds = [e["kind"] for e in events if e["job_id"] == 1]
    assert kinds.count("stage_started") == kinds.count("stage_finished") == 3
    assert kinds.index("stage_finished") < kinds.index("succeeded")

    stats = json.loads(cli("stats", "--db", db, "--json").stdout)["stages"]
    generate = next(s for s in stats if s["stage"] == "generate")
    assert (generate["queue"], generate["runs"], generate["failed"]) == ("papers", 2, 1)
    assert generate["p50"] >= 0.2
    table = cli("stats", "--db", db, "--queue", "papers").stdout.splitlines()
    assert table[0].split() == ["queue", "stage", "runs", "failed", "p50", "p95"]
    assert table[2].split()[:4] == ["papers", "generate", "2", "1"]
    unknown = cli("stats", "--db", db, "--queue", "nope", check=False)
    assert (unknown.returncode, unknown.stderr) == (2, "batchdash: error: unknown queue 'nope'\n")


def test_a_crash_mid_stage_keeps_the_done_stages_and_the_rescued_attempt_starts_again(
    tmp_path: Path, any_db: str
) -> None:
    _enqueue(
        tmp_path,
        any_db,
        [{"key": "long", "payload": {"stages": [["fetch", 0.05], ["generate", 60]]}}],
    )
    first = _worker(any_db)
    try:

        def in_generate() -> bool:
            job = _show(any_db, 1)["job"]
            return bool(job["stage"] == "generate" and job["progress"] is not None)

        wait_until(in_generate, what="the running job to report stage generate")
        job = _show(any_db, 1)["job"]
        assert (job["status"], job["progress"], job["progress_note"]) == (
            "running",
            0.5,
            "1/2 stages",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    second = _worker(any_db)
    try:

        def started_again() -> bool:
            stages = _show(any_db, 1)["stages"]
            return any(s["attempt"] == 2 and s["name"] == "generate" for s in stages)

        wait_until(started_again, what="the rescued attempt to reach stage generate")
        shown = _show(any_db, 1)
        runs = [(s["attempt"], s["name"], s["status"]) for s in shown["stages"]]
        assert runs == [
            (1, "fetch", "finished"),
            (1, "generate", "running"),  # cut short by the crash: never ended
            (2, "fetch", "finished"),
            (2, "generate", "running"),
        ]
        text = cli("jobs", "show", "1", "--db", any_db).stdout
        assert "interrupted" in text and "attempt 2" in text
    finally:
        _stop(second)
