"""Cost budgets with real worker processes and remote batches calling the simulator over
HTTP: a budget pauses its queue within one job of being reached, `--once` says why (exit 1),
`queue resume` refuses while it is spent, raising the budget runs the queue to completion;
an ingested batch that reaches the budget pauses its queue and no new batch goes out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli

#: One worker, one job at a time: the pause must come right after the job that reached it.
WORKER = ("worker", "--concurrency", "1", "--poll", "0.02", "--idle-exit", "0.5")
JOBS = 12


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, sim: SimServer) -> dict[str, str]:
    """The simulator as OpenAI, at a price that makes each job cost about a dollar."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-mini": [400_000, 400_000]}))
    return {
        "OPENAI_BASE_URL": sim.base_url,
        "OPENAI_API_KEY": "sim",
        "BATCHDASH_PRICES": str(prices),
    }


def _request_file(path: Path, queue_prefix: str, n: int) -> Path:
    lines = [
        {
            "custom_id": f"{queue_prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _jobs(db: str) -> list[dict[str, object]]:
    listed = json.loads(cli("jobs", "list", "--db", db, "--json", "--limit", "1000").stdout)
    jobs: list[dict[str, object]] = listed["jobs"]
    return jobs


def test_a_budget_pauses_its_queue_and_raising_it_finishes(
    tmp_path: Path, any_db: str, env: dict[str, str]
) -> None:
    db = any_db
    requests = _request_file(tmp_path / "papers.jsonl", "p", JOBS)
    cli("enqueue", str(requests), "--db", db, "--queue", "papers")
    # Every request is the same, so every job costs the same: learn it from a probe job.
    probe = _request_file(tmp_path / "probe.jsonl", "probe", 1)
    cli("enqueue", str(probe), "--db", db, "--queue", "probe")
    cli(*WORKER, "--queue", "probe", "--db", db, **env)
    (cost,) = [j["cost"] for j in _jobs(db) if j["queue"] == "probe"]
    assert isinstance(cost, float) and cost > 0.5
    budget = 3.5 * cost
    cli("queue", "budget", "papers", "--usd", f"{budget:.2f}", "--db", db)

    cli(*WORKER, "--queue", "papers", "--db", db, **env)  # exits once nothing is claimable
    done = [j for j in _jobs(db) if j["queue"] == "papers" and j["status"] == "succeeded"]
    spent = sum(float(j["cost"]) for j in done)  # type: ignore[arg-type]
    # Paused by the job that reached the budget: 4 jobs of 3.5 jobs' worth, no more.
    assert len(done) == 4 and spent >= budget > spent - cost

    once = cli("--once", "--db", db, check=False)
    assert once.returncode == 1
    assert (
        f"queue papers paused: budget ${float(f'{budget:.2f}'):,.2f} reached (${spent:,.2f} spent)"
        in once.stdout
    )
    as_json = json.loads(cli("--once", "--json", "--db", db, check=False).stdout)
    (papers,) = [q for q in as_json["queues"] if q["name"] == "papers"]
    assert papers["pause_reason"] == "budget" and papers["spend_usd"] == pytest.approx(spent)

    refused = cli("queue", "resume", "papers", "--db", db, check=False)
    assert refused.returncode == 2 and "raise or clear the budget" in refused.stderr
    held = cli("resume", "--db", db, check=False)  # every queue: this one stays paused
    assert held.returncode == 1 and "queue 'papers' stays paused: budget" in held.stderr

    raised = cli("queue", "budget", "papers", "--usd", "1000", "--db", db)
    assert "resumed" in raised.stdout
    cli(*WORKER, "--queue", "papers", "--db", db, **env)
    statuses = [j["status"] for j in _jobs(db) if j["queue"] == "papers"]
    assert statuses == ["succeeded"] * JOBS
    assert cli("--once", "--db", db, check=False).returncode == 0


def test_an_ingested_batch_that_reaches_the_budget_pauses_its_queue(
    tmp_path: Path, any_db: str, env: dict[str, str]
) -> None:
    db = any_db
    local = _request_file(tmp_path / "local.jsonl", "l", 1)
    cli("enqueue", str(local), "--db", db, "--queue", "papers")  # creates the queue
    cli("queue", "budget", "papers", "--usd", "2", "--db", db)
    batch = _request_file(tmp_path / "batch.jsonl", "b", 6)  # ~ $0.60 a line at batch price
    wait = ("--wait", "--interval", "0.05")
    cli("submit", str(batch), "--queue", "papers", *wait, "--db", db, **env)
    once = cli("--once", "--db", db, check=False)
    assert once.returncode == 1 and "queue papers paused: budget $2.00 reached" in once.stdout
    again = cli("submit", str(batch), "--queue", "papers", "--db", db, check=False, **env)
    assert again.returncode == 2
    assert "queue 'papers' budget $2.00 reached" in again.stderr
    assert "raise or clear its budget to submit more" in again.stderr
    assert len(json.loads(cli("batches", "list", "--json", "--db", db).stdout)["batches"]) == 1
