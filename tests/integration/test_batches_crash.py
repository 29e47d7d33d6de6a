"""Crashes at the worst moments, with real processes killed by SIGKILL.

- the poller dies in the middle of ingesting a big output file: running it again gives
  the same final state with no duplicate rows or events;
- `batchdash submit` dies after the provider accepted `create` but before the answer was
  recorded: `batches reconcile` adopts the remote batch, and there is still only one;
- a crash right after the intent was recorded: reconcile uploads and creates it once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchdash.core import batch_input, batches
from batchdash.core.db import open_store, open_sync_store
from batchdash.core.providers import openai_batch, openai_send
from batchdash.core.sim.errors import SimError
from batchdash.core.sim.server import SimConfig, SimServer
from batchdash.core.sync import run_cycle
from tests.conftest import cli, spawn, wait_until
from tests.integration.test_batches import remote_batches, write_requests


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        yield server


def env(sim: SimServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}


def query(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with open_sync_store(db_path) as s:
        return [tuple(r) for r in s.conn.execute(sql, params)]


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def kill_submit_at_create(
    sim: SimServer,
    db_path: Path,
    path: Path,
    created: threading.Event,
    release: threading.Event,
    *args: str,
    environ: dict[str, str] | None = None,
) -> None:
    """Run `submit` (with `args`, in `environ`, default the OpenAI one), kill -9 it once the
    provider got the create call, then let it answer."""
    submit_env = env(sim) if environ is None else environ
    submitter = spawn("submit", str(path), "--db", str(db_path), *args, **submit_env)
    try:
        assert created.wait(60), "create never reached the provider"
        kill(submitter)
    finally:
        release.set()
        if submitter.poll() is None:
            kill(submitter)


def final_state(db_path: Path) -> dict[str, Any]:
    """Everything a user sees of the batches, minus timestamps."""
    return {
        "items": query(
            db_path,
            "SELECT batch_id, custom_id, job_id, outcome, status_code, error_code, "
            "input_tokens, output_tokens FROM batch_items ORDER BY batch_id, custom_id",
        ),
        "jobs": query(
            db_path,
            "SELECT j.id, j.key, j.status, j.error_kind, j.input_tokens, j.output_tokens, "
            "length(r.result) FROM jobs j LEFT JOIN job_results r ON r.job_id = j.id "
            "ORDER BY j.id",
        ),
        "batches": query(
            db_path,
            "SELECT id, remote_id, state, raw_status, total, input_tokens, output_tokens "
            "FROM batches ORDER BY id",
        ),
        "terminal_events_per_job": query(
            db_path,
            "SELECT job_id, count(*) FROM events WHERE kind IN ('succeeded', 'failed', "
            "'cancelled') GROUP BY job_id HAVING count(*) != 1",
        ),
    }


def test_poller_killed_mid_ingestion_resumes_to_the_same_state(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    n = 16_000
    ids = [f"big-{i:05d}" for i in range(n)] + ["big-errline", "big-missing"]
    path = write_requests(tmp_path / "big.jsonl", ids)
    cli("submit", str(path), "--db", str(db_path), timeout=120, **env(sim))
    [(batch_id,)] = query(db_path, "SELECT id FROM batches")
    poller = spawn("poll", "--db", str(db_path), "--interval", "0.05", **env(sim))
    try:
        ingested = "SELECT count(*) FROM batch_items WHERE batch_id = ? AND outcome != 'pending'"
        wait_until(
            lambda: query(db_path, ingested, batch_id)[0][0] > 0,
            timeout=60,
            interval=0.01,
            what="ingestion to start",
        )
        kill(poller)
    finally:
        if poller.poll() is None:
            kill(poller)
    partial = query(db_path, ingested, batch_id)[0][0]
    (ingested_at,) = query(db_path, "SELECT ingested_at FROM batches")[0]
    assert 0 < partial < n + 2 and ingested_at is None, "kill did not land mid-ingestion"
    cli("poll", "--until-done", "--interval", "0.05", "--db", str(db_path), timeout=120, **env(sim))
    state = final_state(db_path)
    assert state["terminal_events_per_job"] == []
    assert len(state["items"]) == len(state["jobs"]) == n + 2
    outcomes = {row[1]: row[3] for row in state["items"]}
    assert outcomes.pop("big-errline") == "errored" and outcomes.pop("big-missing") == "missing"
    assert set(outcomes.values()) == {"succeeded"}
    # Polling again changes nothing at all.
    cli("poll", "--until-done", "--interval", "0.05", "--db", str(db_path), **env(sim))
    assert final_state(db_path) == state


def test_submit_killed_after_create_accepted_is_reconciled_once(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    created, release = threading.Event(), threading.Event()
    original = sim.store.create_batch

    def held(params: dict[str, Any]) -> Any:
        # The provider accepts the batch, then the answer is held until the client is dead.
        result = original(params)
        created.set()
        release.wait(30)
        return result

    sim.store.create_batch = held  # type: ignore[method-assign]
    path = write_requests(tmp_path / "crash.jsonl", ["c1", "c2", "c-errline"])
    kill_submit_at_create(sim, db_path, path, created, release)
    sim.store.create_batch = original  # type: ignore[method-assign]
    [(batch_id, state, remote_id, file_id)] = query(
        db_path, "SELECT id, state, remote_id, input_file_id FROM batches"
    )
    assert (state, remote_id) == ("submitting", None) and file_id
    out = cli("batches", "reconcile", "--db", str(db_path), **env(sim)).stdout
    assert f"batch {batch_id}: found batch_" in out
    cli("poll", "--until-done", "--interval", "0.05", "--db", str(db_path), **env(sim))
    [remote] = remote_batches(sim)
    assert query(db_path, "SELECT remote_id, state FROM batches") == [(remote.id, "partial")]
    assert "nothing to reconcile" in cli("batches", "reconcile", "--db", str(db_path)).stdout


async def test_batch_reconciled_after_failed_creates_is_polled_at_once(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    created, release = threading.Event(), threading.Event()
    original = sim.store.create_batch
    calls: list[int] = []

    def flaky_then_held(params: dict[str, Any]) -> Any:
        # Three clean 500s (each pushes the batch's next poll further back, to 2-6 s after
        # the third), then accepted while the answer is held until the submitter is dead.
        calls.append(1)
        if len(calls) <= 3:
            raise SimError.server_error()
        result = original(params)
        created.set()
        release.wait(30)
        return result

    sim.store.create_batch = flaky_then_held  # type: ignore[method-assign]
    path = write_requests(tmp_path / "flaky.jsonl", ["f1", "f2"])
    kill_submit_at_create(sim, db_path, path, created, release)
    sim.store.create_batch = original  # type: ignore[method-assign]
    async with await open_store(db_path) as db:
        [(batch_id, found, _)] = await openai_batch.reconcile(db)
        assert found.startswith("found batch_")
        print(
            "DBG",
            query(db_path, "SELECT next_poll_at - ?, poll_failures FROM batches", time.time()),
            len(calls),
        )
        # The create retries' backoff (seconds, minutes after more failures) is not
        # inherited: the batch is due at once and the very next cycle polls it.
        assert query(db_path, "SELECT next_poll_at, poll_failures FROM batches") == [(None, 0)]
        report = await run_cycle(db)
    assert report.ingested == 1
    assert query(db_path, "SELECT id, state FROM batches") == [(batch_id, "succeeded")]


async def test_crash_after_recording_the_intent_is_submitted_by_reconcile(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "intent.jsonl", ["i1", "i2"])
    plan = batch_input.validate_file(path)
    async with await open_store(db_path) as db:
        # What submit_file records before uploading; the process "dies" right after.
        [batch_id] = await db.write(
            lambda c: batches.record_intent(c, plan, queue="intent", metadata={}, now=time.time())
        )
        assert await openai_batch.reconcile(db) == [(batch_id, "submitted", False)]
        assert await openai_batch.reconcile(db) == []
    [remote] = remote_batches(sim)
    with open_sync_store(db_path) as s:
        b = s.tx.batches.get_batch(batch_id)
    assert b.remote_id == remote.id and b.state != "submitting"
    assert remote.metadata["batchdash_submit_key"] == b.submit_key


async def test_upload_whose_submitter_died_is_reused_by_reconcile(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "up.jsonl", ["u1", "u2"])
    plan = batch_input.validate_file(path)
    async with await open_store(db_path) as db:
        [batch_id] = await db.write(
            lambda c: batches.record_intent(c, plan, queue="up", metadata={}, now=time.time())
        )
        b = await db.read(lambda c: c.batches.get_batch(batch_id))
        # The submitter uploaded the file, then died before recording its id.
        with path.open("rb") as handle:
            uploaded = sim.store.add_file(handle, openai_send.upload_name(b), "batch")
        assert await openai_batch.reconcile(db) == [(batch_id, "submitted", False)]
    [remote] = remote_batches(sim)
    assert remote.input_file_id == uploaded["id"]
    assert [f["id"] for f in sim.store.list_files("batch", 100, None, "desc")["data"]] == [
        uploaded["id"]
    ]


def test_live_submitter_is_left_alone_by_reconcile(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    created, release = threading.Event(), threading.Event()
    original = sim.store.create_batch

    def held(params: dict[str, Any]) -> Any:
        created.set()
        release.wait(30)
        return original(params)

    sim.store.create_batch = held  # type: ignore[method-assign]
    path = write_requests(tmp_path / "live.jsonl", ["l1"])
    submitter = spawn("submit", str(path), "--db", str(db_path), **env(sim))
    try:
        assert created.wait(60)
        out = cli("batches", "reconcile", "--db", str(db_path), **env(sim)).stdout
        assert "being submitted by a live process" in out
    finally:
        release.set()
    assert submitter.wait(timeout=60) == 0
    sim.store.create_batch = original  # type: ignore[method-assign]
    assert len(remote_batches(sim)) == 1
    assert json.loads(cli("batches", "list", "--json", "--db", str(db_path)).stdout)["batches"][0][
        "remote_id"
    ]
