"""The `anthropic` handler under real workers: the Messages API of the simulator over real
HTTP with the real SDK; retries (429/500/529, honouring retry-after) belong to the queue,
any other 4xx fails the job at once; usage and the real-time price are recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.sim import answers
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db
from tests.integration.test_anthropic_batches import MODEL, sim_env

#: Real-time price of claude-haiku-4-5: USD per million tokens (input, output).
PRICE = (1.0, 5.0)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    # A fifth of all calls fail with 429, 500 or 529 before reaching the handler.
    with SimServer(SimConfig(speed=1000, fault_rate=0.2, seed=3)) as server:
        yield server


def _line(key: str, text: str) -> str:
    params = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}
    return json.dumps({"key": key, "payload": {"params": params}}) + "\n"


def test_anthropic_jobs_run_under_workers(sim: SimServer, tmp_path: Path, any_db: str) -> None:
    path = tmp_path / "jobs.jsonl"
    lines = [_line(f"ok{i}", f"hello {i}") for i in range(20)]
    lines += [_line("bad", "SIM_FAIL_400 please"), _line("busy", "SIM_FAIL_529 please")]
    path.write_text("".join(lines))
    env = sim_env(sim)
    cli("enqueue", str(path), "--db", any_db, "--handler", "anthropic", "--max-attempts", "6")
    cli(
        *("worker", "--db", any_db, "--idle-exit", "3", "--retry-base", "0.01"),
        "--concurrency",
        "4",
        timeout=120,
        **env,
    )
    with open_db(any_db) as db:
        jobs = {j.key: j for j in db.tx.jobs.list_jobs()}
    for i in range(20):
        job = jobs[f"ok{i}"]
        assert job.status == "succeeded"
        assert job.result["content"][0]["text"] == answers.transform(f"hello {i}")
        assert job.input_tokens and job.output_tokens
        cost = (job.input_tokens * PRICE[0] + job.output_tokens * PRICE[1]) / 1e6
        assert job.cost == pytest.approx(cost)
    assert sum(j.attempts for k, j in jobs.items() if k.startswith("ok")) > 20  # faults retried
    bad, busy = jobs["bad"], jobs["busy"]
    assert (bad.status, bad.error_kind, bad.attempts) == ("failed", "invalid_request_error", 1)
    assert (busy.status, busy.error_kind, busy.attempts) == ("failed", "overloaded_error", 6)
