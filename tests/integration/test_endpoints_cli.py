"""Named endpoints end to end: the name is stored on the batch and the job, and every later
call (poll, the worker's handler call, resubmit) goes where the name says, with the key
from its variable. Real processes, real HTTP to the OpenAI simulator, both back ends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.db import open_sync_store
from batchdash.core.db.location import parse_location
from batchdash.core.models import ALL_JOBS, JobFilter
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli
from tests.integration.test_batches import write_requests


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000, stall_finalizing_s=1e6)) as server:
        yield server


KEY = "sk-named-4242"


def setup(tmp_path: Path, sim: SimServer, any_db: str) -> dict[str, str]:
    """A config naming the simulator `simx` (key in SIMX_KEY); the SDK's own default points
    nowhere and has no key, so only the named endpoint can work."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[endpoints.simx]\nprovider = "openai"\nbase_url = "{sim.base_url}"\n'
        'api_key_env = "SIMX_KEY"\n'
    )
    return {
        "BATCHDASH_CONFIG": str(config),
        "BATCHDASH_DB": any_db,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "SIMX_KEY": KEY,
    }


def test_the_stored_endpoint_name_drives_every_later_call(
    tmp_path: Path, sim: SimServer, any_db: str
) -> None:
    env = setup(tmp_path, sim, any_db)
    requests = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(5)])
    cli("submit", str(requests), "--endpoint", "simx", **env)
    # A separate process polls: it finds the endpoint by the stored name alone.
    cli("poll", "--until-done", "--interval", "0.05", timeout=60, **env)
    cli("enqueue", str(requests), "--queue", "local", "--endpoint", "simx", **env)
    cli("worker", "--queue", "local", "--idle-exit", "0.5", **env)
    with open_sync_store(parse_location(any_db)) as db:
        [batch] = db.read(lambda tx: tx.batches.list_batches())
        jobs = db.read(lambda tx: tx.jobs.list_jobs(JobFilter(queues=("local",))))
        every = db.read(lambda tx: tx.jobs.list_jobs(ALL_JOBS))
    assert (batch.endpoint_name, batch.base_url, batch.state) == ("simx", sim.base_url, "succeeded")
    assert {j.endpoint_name for j in jobs} == {"simx"}
    assert {j.status for j in jobs} == {"succeeded"}
    assert len(every) == 10
    assert KEY not in json.dumps([batch.to_dict(), *(j.to_dict() for j in jobs)])


def test_a_batch_whose_endpoint_left_the_config_names_it_in_one_line(
    tmp_path: Path, sim: SimServer, any_db: str
) -> None:
    env = setup(tmp_path, sim, any_db)
    requests = write_requests(tmp_path / "papers.jsonl", ["a", "b"])
    cli("submit", str(requests), "--endpoint", "simx", **env)
    Path(env["BATCHDASH_CONFIG"]).write_text("")
    result = cli("batches", "resubmit", "1", check=False, **env)
    assert result.returncode == 2
    assert result.stderr == (
        "batchdash: error: batch 1 was sent through endpoint 'simx', which the config file "
        "no longer defines (add [endpoints.simx] back)\n"
    )
