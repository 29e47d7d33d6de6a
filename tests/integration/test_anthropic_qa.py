"""QA with a Claude judge: `qa run --judges claude-…` asks Anthropic's Messages API (real
time) or submits Message Batches (`--as-batch`), and prices each verdict at Claude's rate
(half of it as a batch).

The simulator answers `output_config.format` (a JSON schema) with JSON matching it, as
Claude does, so every verdict carries scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.qa_models import QAResult
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db
from tests.integration.test_anthropic_batches import MODEL, poll, sim_env, write_requests

JUDGE = "claude-sonnet-4-5"
#: Real-time price of claude-sonnet-4-5: USD per million tokens (input, output).
PRICE = (3.0, 15.0)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


def _verdicts(db_path: Path, job_ids: list[int]) -> list[QAResult]:
    with open_db(db_path) as db:
        return [r for job_id in job_ids for r in db.tx.qa.qa_results_for_job(job_id)]


def _check(verdicts: list[QAResult], jobs: list[int], rate: float) -> None:
    assert sorted(v.job_id for v in verdicts) == jobs and {v.judge for v in verdicts} == {JUDGE}
    for v in verdicts:
        assert v.scores and v.error is None and v.overall is not None, v.error
        assert v.input_tokens and v.output_tokens is not None
        cost = (v.input_tokens * PRICE[0] + v.output_tokens * PRICE[1]) / 1e6 * rate
        assert v.cost == pytest.approx(cost)


def test_a_claude_judge_scores_in_real_time_and_as_a_batch(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    env = sim_env(sim)
    path = write_requests(tmp_path / "work.jsonl", [f"w{i}" for i in range(4)], model=MODEL)
    cli("submit", str(path), "--provider", "anthropic", "--db", str(db_path), **env)
    poll(db_path, sim)
    with open_db(db_path) as db:
        jobs = sorted(j.id for j in db.tx.jobs.list_jobs())
    base = ("qa", "run", "--db", str(db_path), "--queue", "work", "--sample", "100%")
    out = cli(*base, "--judges", JUDGE, check=False, **env)
    assert out.returncode == 0, out.stderr
    _check(_verdicts(db_path, jobs), jobs, 1.0)

    out = cli(*base, "--judges", JUDGE, "--as-batch", "--rescore", **env)
    assert "submitted 4 judge requests for 4 jobs as batches" in out.stdout
    poll(db_path, sim)
    with open_db(db_path) as db:
        qa_batches = [b for b in db.tx.batches.list_batches() if b.queue == "qa:work"]
    assert [(b.provider, b.state) for b in qa_batches] == [("anthropic", "succeeded")]
    verdicts = _verdicts(db_path, jobs)
    assert {v.batch_id for v in verdicts} == {qa_batches[0].id}
    _check(verdicts, jobs, 0.5)
