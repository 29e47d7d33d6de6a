"""`batchdash submit --tag` writes the tags in the transaction that records the batch, on
both back ends: a submit that dies after recording (here the provider refuses the upload)
leaves a `submitting` batch that `reconcile` finishes, already tagged with its jobs."""

from __future__ import annotations

import json
from pathlib import Path

from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli
from tests.integration.test_batches import write_requests


def test_a_batch_is_tagged_even_when_its_upload_fails(tmp_path: Path, any_db: str) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(3)])
    db = ("--db", any_db)
    cli("init", *db)
    with SimServer(SimConfig(speed=1000, api_key="the-right-key")) as sim:
        refused = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "a-wrong-key"}
        proc = cli("submit", str(path), "--tag", "nightly", *db, check=False, **refused)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    shown = json.loads(cli("batches", "show", "1", "--json", *db).stdout)
    assert shown["batch"]["state"] == "submitting"  # recorded, not sent
    assert shown["tags"] == ["nightly"]
    jobs = json.loads(cli("jobs", "list", "--json", "--filter", "tag:nightly", *db).stdout)
    assert sorted(job["key"] for job in jobs["jobs"]) == ["p-0", "p-1", "p-2"]
