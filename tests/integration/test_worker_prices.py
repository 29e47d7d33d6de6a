"""A bad price file stops a worker before any paid call; a price problem after a paid
call never fails the job (its cost is recorded as unknown instead)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import config, pricing
from batchdash.core.handlers import HandlerResult, JobContext, openai_handler
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli

REQUEST = {
    "url": "/v1/chat/completions",
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


@pytest.fixture
def bad_prices(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text('{"gpt-4o-mini": [0.15,')
    return path


@pytest.mark.parametrize("command", [("worker",), ("workers", "start")])
def test_worker_refuses_a_malformed_price_file_before_any_call(
    tmp_path: Path, db_path: Path, bad_prices: Path, sim: SimServer, command: tuple[str, ...]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"custom_id": "a", "method": "POST", **REQUEST}) + "\n")
    cli("enqueue", str(jobs), "--db", str(db_path), "--handler", "openai")
    env = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}
    out = cli(
        *command,
        "--db",
        str(db_path),
        "--idle-exit",
        "1",
        check=False,
        BATCHDASH_PRICES=str(bad_prices),
        **env,
    )
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert str(bad_prices) in line and "expected" in line
    listed = cli("jobs", "list", "--db", str(db_path), "--json").stdout
    assert [job["attempts"] for job in json.loads(listed)["jobs"]] == [0]


def test_a_price_problem_after_the_paid_call_keeps_the_result(
    bad_prices: Path, sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHDASH_PRICES", str(bad_prices))
    monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sim")
    config.file_settings.cache_clear()
    pricing.price_table.cache_clear()
    job = JobContext(id=1, key="a", queue="q", payload=REQUEST, attempt=1, max_attempts=3)
    try:
        answer = asyncio.run(openai_handler(job))
    finally:
        pricing.price_table.cache_clear()
    assert isinstance(answer, HandlerResult)
    assert answer.result["choices"] and answer.input_tokens and answer.output_tokens
    assert answer.cost is None  # unknown, not a made-up number and not a failed job
