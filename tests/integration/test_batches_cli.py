"""The batch commands as a user runs them: real processes, real HTTP to the simulator."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.actor import os_user
from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_store, open_sync_store
from batchdash.core.providers import openai_batch
from batchdash.core.sim.server import SimConfig, SimServer
from batchdash.core.sync import run_cycle
from tests.conftest import cli
from tests.integration.test_batches import CHAT, batch, write_requests


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


def test_submit_wait_list_show_download(sim: SimServer, tmp_path: Path, any_db: str) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(12)])
    db = ("--db", any_db)
    wait = ("--wait", "--interval", "0.05", "--model-check")
    out = cli("submit", str(path), *wait, *db, **env(sim)).stdout
    assert "12 lines" in out and "queue 'papers'" in out and "succeeded" in out
    listing = cli("batches", "list", *db).stdout
    assert "papers" in listing and "12 ok / 12" in listing
    [row] = json.loads(cli("batches", "list", "--json", *db).stdout)["batches"]
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
    cli("init", "--db", str(db_path))  # without a database, every batch is "no database"
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
    async with await open_store(db_path) as db:
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


def write_texts(path: Path, texts: dict[str, str]) -> Path:
    """A batch-style chat file: custom_id → user message (markers like SIM_FAIL_400 work)."""
    with path.open("w") as out:
        for custom_id, text in texts.items():
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
            line = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}
            out.write(json.dumps(line) + "\n")
    return path


def test_retry_of_remote_failures_points_to_resubmit_which_clears_them(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    db = ("--db", any_db)
    wait = ("--wait", "--interval", "0.05")
    sim.config.token_limit = 5  # the first submit fails validation: every line errored
    path = write_texts(tmp_path / "tl.jsonl", {f"t-{i}": f"question number {i}" for i in range(4)})
    assert cli("submit", str(path), *wait, *db, check=False, **env(sim)).returncode == 1
    once = cli("--once", *db, check=False)
    assert (
        once.returncode == 1 and "4 failed jobs" in once.stdout and "batch 1 failed" in once.stdout
    )

    proc = cli("retry", "--status", "failed", *db, check=False)
    assert proc.returncode == 1 and "retried 0 jobs" in proc.stdout
    assert (
        "4 of the selected jobs ran in remote batch 1: run `batchdash batches resubmit 1`"
        in proc.stderr
    )

    sim.config.token_limit = None
    out = cli("batches", "resubmit", "1", *db, **env(sim)).stdout
    assert "batch 1: 4 lines resubmitted as batch 2" in out
    cli("poll", "--until-done", "--interval", "0.05", *db, **env(sim))
    assert cli("batches", "show", "2", *db).stdout.count("succeeded 4") == 1
    # The failures were resubmitted and their child succeeded: nothing needs attention.
    once = cli("--once", *db, check=False)
    assert once.returncode == 0, once.stdout
    assert "nothing needs attention" in once.stdout


def test_resubmit_leaves_out_permanent_errors_unless_asked(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    db = ("--db", str(db_path))
    texts = {"ok-1": "hello", "bad-400": "SIM_FAIL_400 please", "ok-errline": "again"}
    path = write_texts(tmp_path / "perm.jsonl", texts)
    cli("submit", str(path), "--wait", "--interval", "0.05", *db, check=False, **env(sim))
    proc = cli("retry", "--status", "failed", *db, check=False)
    assert "2 of the selected jobs ran in remote batch 1" in proc.stderr
    assert "add --include-permanent to also send its 1 line whose" in proc.stderr
    # The error-file line goes again; the HTTP 400 line stays behind, and says so.
    out = cli("batches", "resubmit", "1", *db, **env(sim)).stdout
    assert "batch 1: 1 line resubmitted as batch 2" in out
    assert "left out 1 line whose error will not pass on retry" in out
    assert "--include-permanent" in out
    # The HTTP 400 line was counted completed by the provider; it failed all the same.
    assert "1 ok · 2 failed / 3" in cli("batches", "list", *db).stdout
    again = cli("batches", "resubmit", "1", *db, check=False, **env(sim))
    assert again.returncode == 2 and "nothing resubmitted" in again.stderr
    out = cli("batches", "resubmit", "1", "--include-permanent", *db, **env(sim)).stdout
    assert "batch 1: 1 line resubmitted as batch 3" in out and "left out" not in out
    done = cli("batches", "resubmit", "1", "--include-permanent", *db, check=False, **env(sim))
    assert done.returncode == 2 and "already resubmitted as batch 3" in done.stderr


def test_resubmit_takes_cancelled_lines(tmp_path: Path, db_path: Path) -> None:
    db = ("--db", str(db_path))
    slow = SimConfig(lines_per_second=0.1, validating_s=0.05, cancel_s=0.05, finalizing_s=0.05)
    with SimServer(slow) as server:
        path = write_requests(tmp_path / "c.jsonl", [f"c-{i}" for i in range(6)])
        cli("submit", str(path), *db, **env(server))
        cli("batches", "cancel", "1", *db, **env(server))
        cli("poll", "--until-done", "--interval", "0.05", *db, **env(server))
        assert "outcomes: cancelled 6" in cli("batches", "show", "1", *db).stdout
        server.config.lines_per_second = 10_000  # the child runs at once
        out = cli("batches", "resubmit", "1", *db, **env(server)).stdout
        assert "resubmitted as batch 2" in out
        cli("poll", "--until-done", "--interval", "0.05", *db, **env(server))
    [child] = [
        b
        for b in json.loads(cli("batches", "list", "--json", *db).stdout)["batches"]
        if b["id"] == 2
    ]
    assert child["state"] == "succeeded"
    jobs = cli("jobs", "list", "--status", "cancelled", *db).stdout
    assert "c-" not in jobs
    # The audit trail: who cancelled and who resubmitted, from the command line.
    events = map(json.loads, cli("export", "--events", *db).stdout.splitlines())
    by = f"by {os_user()} via cli"
    asked = {e["kind"]: e["detail"] for e in events if e["batch_id"] == 1 and not e["job_id"]}
    assert asked["batch_cancel"] == f"requested {by}"
    assert asked["batch_resubmitted"] == f"6 lines → 2; {by}"


def test_list_and_once_show_lines_age_and_errors_as_text(db_path: Path) -> None:
    now = time.time()
    with open_sync_store(db_path) as db:
        imported = NewBatch("old", CHAT, "m", remote_id="batch_old", state="expired")
        batch_id = db.write(lambda c: c.batches.add_batch(imported, now))
        error = {"code": "token_limit_exceeded", "message": "limit reached", "line": 3}
        fields = {"remote_created_at": now - 3 * 86400, "completed": 10, "failed": 10}
        fields |= {"total": 20, "errors": [error], "raw_status": "expired"}
        db.write(lambda c: c.batches.update_batch(batch_id, fields, now))
    listing = cli("batches", "list", "--db", str(db_path)).stdout
    assert "10 ok · 10 failed / 20" in listing and "20/20" not in listing
    # The age is the provider's created_at, not the import just now.
    assert "3d" in listing.splitlines()[1].split()
    once = cli("--once", "--db", str(db_path), check=False).stdout
    assert "token_limit_exceeded: limit reached, line 3" in once and "{'code'" not in once
    assert "10 ok · 10 failed / 20" in once
    shown = cli("batches", "show", str(batch_id), "--db", str(db_path)).stdout
    assert "error: token_limit_exceeded: limit reached, line 3" in shown


def test_submit_accepts_custom_ids_openai_accepts(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    ids = ["lesson-0.field0.english", "lesson 0/field 1:deutsch", "x" * 80]
    path = write_requests(tmp_path / "lessons.jsonl", ids)
    db = ("--db", str(db_path))
    cli("submit", str(path), "--wait", "--interval", "0.05", *db, **env(sim))
    rows = [json.loads(r) for r in cli("batches", "download", "1", *db).stdout.splitlines()]
    assert {r["custom_id"]: r["outcome"] for r in rows} == dict.fromkeys(ids, "succeeded")
