"""Queue rate limits under real worker processes: every worker draws from one budget in the
store, a provider's 429 (the simulator over real HTTP) halves the rate and it recovers, and
the limits are set, shown and cleared from the command line."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.models import Job
from batchdash.core.ratelimit import LimitStatus
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db, spawn, wait_until

#: The limit of the worker-pool test: 10 requests a second, a burst of 10.
RPM, BURST = 600, 10


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _jobs(db: str) -> list[Job]:
    with open_db(db) as store:
        return store.read(lambda tx: tx.jobs.list_jobs())


def _status(db: str, queue: str = "q") -> LimitStatus:
    with open_db(db) as store:
        (status,) = store.read(lambda tx: tx.limits.limit_status(time.time(), queue))
    return status


def test_four_workers_stay_under_one_shared_limit_and_use_all_of_it(
    tmp_path: Path, any_db: str
) -> None:
    n = 40  # at 10 a second after a burst of 10: three seconds of work
    lines = [{"key": f"k{i}", "payload": {"model": "m", "text": "x" * 40}} for i in range(n)]
    cli("queue", "limit", "q", "--rpm", str(RPM), "--db", any_db)
    path = _write(tmp_path / "j.jsonl", lines)
    cli("enqueue", str(path), "--queue", "q", "--handler", "sim", "--db", any_db)
    args = ("worker", "--db", any_db, "--concurrency", "16", "--idle-exit", "1")
    workers = [spawn(*args, "--heartbeat", "0.5") for _ in range(4)]
    for proc in workers:
        assert proc.wait(timeout=60) == 0, proc.stdout.read() if proc.stdout else ""
    jobs = _jobs(any_db)
    assert all(j.status == "succeeded" for j in jobs) and len(jobs) == n
    assert len({j.worker_id for j in jobs}) > 1  # the budget was shared, not one worker's
    done = sorted(j.finished_at or 0.0 for j in jobs)
    rate = RPM / 60
    # Never over the limit: in any stretch of time, at most a burst plus the rate times its
    # length (and 2 jobs of scheduling jitter between processes).
    for (i, first), (j, last) in itertools.combinations(enumerate(done), 2):
        assert j - i + 1 <= BURST + rate * (last - first) + 2, (i, j, last - first)
    # Never idle while budget is left: done within the limit's time plus 1 s of start-up.
    began = min(j.started_at or 0.0 for j in jobs)
    assert done[-1] - began <= (n - BURST) / rate + 1.0
    status = _status(any_db)
    assert status.used_rpm == n and status.waits >= n - BURST - 2 and status.wait_max > 2.0


@pytest.fixture
def sim() -> Iterator[SimServer]:
    # A 429 asks for 8 s of patience (retry-after-ms), which the limit must honour: long
    # enough that the next worker run starts inside it even on a loaded machine.
    with SimServer(SimConfig(speed=1000, retry_after_ms=8000)) as server:
        yield server


def _chat(key: str, text: str) -> dict[str, object]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return {"key": key, "payload": {"url": "/v1/chat/completions", "body": body}}


def test_a_429_halves_the_rate_for_retry_after_then_it_recovers(
    tmp_path: Path, sim: SimServer, db_path: Path
) -> None:
    db = str(db_path)
    env = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}
    worker = ("worker", "--db", db, "--concurrency", "16", "--idle-exit", "0.3")
    cli("queue", "limit", "q", "--rpm", str(RPM), "--cooldown", "0.2", "--db", db)
    bad = _write(tmp_path / "bad.jsonl", [_chat("bad", "SIM_FAIL_429 please")])
    cli(
        "enqueue",
        str(bad),
        "--queue",
        "q",
        "--handler",
        "openai",
        "--max-attempts",
        "1",
        "--db",
        db,
    )
    before_429 = time.time()
    cli(*worker, **env)
    throttled = _status(db)
    assert throttled.factor == 0.5 and throttled.throttled_until is not None
    assert throttled.throttled_until >= before_429 + 7.9  # retry-after: 8 s from the 429
    assert " 50% until " in cli("queue", "show", "q", "--db", db).stdout
    # At half the rate (5 a second, a burst of 5) 15 jobs take 2 s; at the limit 0.5 s.
    good = _write(tmp_path / "good.jsonl", [_chat(f"ok{i}", f"hi {i}") for i in range(15)])
    cli("enqueue", str(good), "--queue", "q", "--handler", "openai", "--db", db)
    cli(*worker, **env)
    jobs = [j for j in _jobs(db) if j.key.startswith("ok")]
    assert all(j.status == "succeeded" for j in jobs)
    first_start = min(j.started_at or 0.0 for j in jobs)
    assert first_start < throttled.throttled_until - 2.0, "the run began after the throttle"
    span = max(j.finished_at or 0.0 for j in jobs) - first_start
    assert span >= 1.6
    # After the retry-after it regains 10% of the limit every cooldown (0.2 s).
    wait_until(lambda: _status(db).factor == 1.0, timeout=20, what="the rate to recover")
    assert _status(db).throttled_until is None
    with open_db(db) as store:
        events = store.read(lambda tx: tx.events.list_events(None))
    assert [e.detail for e in events if e.kind == "throttled"] == [
        "all models: rate 50% of the limit after a 429"
    ]


def test_queue_limit_show_and_clear_from_the_command_line(tmp_path: Path, any_db: str) -> None:
    lines = [{"key": f"k{i}", "payload": {"text": "hello"}} for i in range(3)]
    path = _write(tmp_path / "j.jsonl", lines)
    cli("enqueue", str(path), "--queue", "papers", "--handler", "sim", "--db", any_db)
    set_all = cli("queue", "limit", "papers", "--rpm", "500", "--tpm", "200000", "--db", any_db)
    assert set_all.stdout == (
        "queue 'papers': all models limited to 500 rpm, 200,000 tpm (shared by every worker)\n"
    )
    cli("queue", "limit", "papers", "--rpm", "60", "--model", "gpt-4o-mini", "--db", any_db)
    # Limits live in the store: a worker started later runs under them, and shows its use.
    cli("worker", "--db", any_db, "--idle-exit", "0.3")
    shown = cli("queue", "show", "papers", "--db", any_db).stdout.splitlines()
    assert shown[0] == "queue papers: running"
    assert shown[1] == "jobs: 3 (0 pending, 0 running, 3 succeeded, 0 failed, 0 cancelled)"
    assert shown[2] == "budget:  none (spent $0.0000)"
    del shown[2]  # the rest is the limits part
    header = ["MODEL", "LIMIT", "RATE", "USE/MIN", "WAITING", "WAITED/MIN", "MAX", "WAIT"]
    assert shown[3].split() == header
    assert shown[4].split()[:8] == ["(all)", "500", "rpm,", "200,000", "tpm", "100%", "3", "req,"]
    assert shown[5].split()[:6] == ["gpt-4o-mini", "60", "rpm", "100%", "0", "req,"]
    cleared = cli("queue", "limit", "papers", "--clear", "--model", "gpt-4o-mini", "--db", any_db)
    assert cleared.stdout == "queue 'papers': removed 1 rate limit\n"
    cli("queue", "limit", "papers", "--clear", "--db", any_db)
    assert cli("queue", "show", "papers", "--db", any_db).stdout.splitlines()[3] == (
        "rate limits: none (set one: batchdash queue limit papers --rpm N --tpm N)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rpm", "0"), "argument --rpm: must be >= 1, got 0"),
        (("--tpm", "-5"), "argument --tpm: must be >= 1, got -5"),
        ((), "queue limit: give --rpm N and/or --tpm N (or --clear to remove the limit)"),
        (("--clear", "--rpm", "5"), "queue limit: --clear takes no --rpm or --tpm"),
        (("--clear",), "queue 'papers' has no rate limit to remove"),
    ],
)
def test_bad_limits_are_one_line_errors(db_path: Path, args: tuple[str, ...], message: str) -> None:
    cli("queue", "limit", "papers", "--rpm", "1", "--db", str(db_path))
    cli("queue", "limit", "papers", "--clear", "--db", str(db_path))
    proc = cli("queue", "limit", "papers", *args, "--db", str(db_path), check=False)
    assert proc.returncode == 2 and proc.stderr == f"batchdash: error: {message}\n"
    assert cli("queue", "show", "nope", "--db", str(db_path), check=False).stderr == (
        "batchdash: error: unknown queue 'nope'\n"
    )
