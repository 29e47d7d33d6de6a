"""The batch commands as a user runs them: real processes, real HTTP to the simulator."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.providers import openai_batch
from core.sim.server import SimConfig, SimServer
from core.store import Store
from core.sync import run_cycle
from tests.conftest import cli
from tests.integration.test_batches import batch, write_requests


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000, stall_finalizing_s=1e6)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        yield server


def env(sim: SimServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}


def uploads(sim: SimServer) -> list[object]:
    return list(sim.store.list_files(None, 100, None, "desc")["data"])


def test_submit_wait_list_show_download(sim: SimServer, tmp_path: Path, db_path: Path) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(12)])
    db = ("--db", str(db_path))
    wait = ("--wait", "--interval", "0.05", "--model-check")
    out = cli("submit", str(path), *wait, *db, **env(sim)).stdout
    assert "12 lines" in out and "queue 'papers'" in out and "succeeded" in out
    listing = cli("batches", "list", *db).stdout
    assert "papers" in listing and "12/12" in listing
    [row] = json.loads(cli("batches", "list", "--json", *db).stdout)
    assert row["state"] == "succeeded" and row["raw_status"] == "completed"
    shown = cli("batches", "show", row["remote_id"], *db).stdout
    assert "succeeded 12" in shown and row["output_file_id"] in shown
    target = tmp_path / "results.csv"
    cli("batches", "download", "1", "--format", "csv", "-o", str(target), *db)
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["outcome"] for r in rows} == {"succeeded"}
    assert json.loads(rows[0]["result"])["object"] == "chat.completion"
    lines = cli("batches", "download", "1", *db).stdout.splitlines()
    assert json.loads(lines[0])["custom_id"] == "p-0"
    # Batch jobs show up with the same job commands as local work.
    assert "p-11" in cli("jobs", "list", "--queue", "papers", *db).stdout


def test_bad_file_lists_every_bad_line_and_uploads_nothing(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    good = json.dumps(
        {"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}
    )
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                good,  # duplicate custom_id
                good.replace('"ok"', '""'),  # empty custom_id
                good.replace('"ok"', '"u"').replace("/v1/chat/completions", "/v1/embeddings"),
                good.replace('"ok"', '"m2"').replace('"m"', '"other-model"'),
            ]
        )
        + "\n"
    )
    proc = cli("submit", str(path), "--db", str(db_path), check=False, **env(sim))
    assert proc.returncode == 2
    for line in (2, 3, 4, 5, 6):
        assert f"{path}:{line}:" in proc.stderr
    assert "duplicate custom_id 'ok' (first on line 1)" in proc.stderr
    assert "nothing submitted" in proc.stderr
    assert uploads(sim) == []
    assert cli("batches", "list", "--db", str(db_path)).stdout.strip() == "no batches"


def test_unknown_batch_and_missing_key_are_one_line_errors(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    for args in (("show", "999"), ("cancel", "batch_nope"), ("resubmit", "7")):
        proc = cli("batches", *args, "--db", str(db_path), check=False, **env(sim))
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "unknown batch" in proc.stderr
    path = write_requests(tmp_path / "k.jsonl", ["k1"])
    proc = cli("submit", str(path), "--db", str(db_path), check=False, OPENAI_BASE_URL=sim.base_url)
    assert proc.returncode == 2 and "set OPENAI_API_KEY" in proc.stderr
    assert uploads(sim) == []
    model = write_requests(tmp_path / "m.jsonl", ["m1"], model="gpt-nonexistent")
    proc = cli("submit", str(model), "--model-check", "--db", str(db_path), check=False, **env(sim))
    assert proc.returncode == 2 and "model 'gpt-nonexistent' is not offered" in proc.stderr
    assert uploads(sim) == []


async def test_show_says_how_long_a_batch_has_been_finalizing(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "stall.jsonl", ["s1", "s2"])
    async with await Store.open(db_path) as db:
        [batch_id] = await openai_batch.submit_file(
            db, path, queue="stall", metadata={"sim_quirk": "stall_finalizing"}
        )
        deadline = time.monotonic() + 20
        while batch(db_path, batch_id).state != "finalizing":
            assert time.monotonic() < deadline
            await run_cycle(db)
    assert batch(db_path, batch_id).raw_status == "finalizing"
    assert "finalizing for" in cli("batches", "show", str(batch_id), "--db", str(db_path)).stdout
    assert "finalizing for" in cli("batches", "list", "--db", str(db_path)).stdout


def test_submit_accepts_custom_ids_openai_accepts(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    ids = ["lesson-0.field0.english", "lesson 0/field 1:deutsch", "x" * 80]
    path = write_requests(tmp_path / "lessons.jsonl", ids)
    db = ("--db", str(db_path))
    cli("submit", str(path), "--wait", "--interval", "0.05", *db, **env(sim))
    rows = [json.loads(r) for r in cli("batches", "download", "1", *db).stdout.splitlines()]
    assert {r["custom_id"]: r["outcome"] for r in rows} == dict.fromkeys(ids, "succeeded")
