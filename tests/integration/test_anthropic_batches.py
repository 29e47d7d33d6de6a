"""Anthropic Message Batches end to end: the real `anthropic` SDK over real HTTP against the
simulator, driven through the real CLI (`submit --provider anthropic`, `poll`, `batches
show/cancel/resubmit/download/import/reconcile`) as separate processes.

Markers in a custom_id steer the simulator (core/sim/quirks.py): SIM_FAIL_400 →
errored `invalid_request_error`, SIM_FAIL_500 → `api_error`, SIM_FAIL_529 →
`overloaded_error`, SIM_EXPIRED / SIM_CANCELED → that result type.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from batchdash.core import batches
from batchdash.core.actor import os_user
from batchdash.core.providers import anthropic_batch, anthropic_input
from batchdash.core.sim import answers
from batchdash.core.sim.anthropic_batches import AnthropicStore
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db, open_db_async
from tests.integration.test_batches_crash import kill_submit_at_create

MODEL = "claude-haiku-4-5"
#: Batch price of claude-haiku-4-5: half of (1, 5) USD per million tokens.
HALF_PRICE = (0.5, 2.5)
MIXED = [
    *(f"ok-{i}" for i in range(5)),
    "bad-SIM_FAIL_400",
    "api-SIM_FAIL_500",
    "over-SIM_FAIL_529",
    "late-SIM_EXPIRED",
    "stop-SIM_CANCELED",
]


def write_requests(path: Path, ids: list[str], *, model: str = MODEL) -> Path:
    """A Message Batches JSONL file: one request per custom_id, asking `say <index>`."""
    with path.open("w") as out:
        for i, custom_id in enumerate(ids):
            params = {
                "model": model,
                "max_tokens": 64,
                "messages": [{"role": "user", "content": f"say {i}"}],
            }
            out.write(json.dumps({"custom_id": custom_id, "params": params}) + "\n")
    return path


def sim_env(sim: SimServer) -> dict[str, str]:
    """The SDK's own variables, pointed at the simulator (Anthropic's base URL has no /v1)."""
    return {"ANTHROPIC_BASE_URL": sim.base_url.removesuffix("/v1"), "ANTHROPIC_API_KEY": "sim"}


def sdk(sim: SimServer) -> anthropic.Anthropic:
    """The real SDK, as a user would point it at the simulator."""
    env = sim_env(sim)
    return anthropic.Anthropic(base_url=env["ANTHROPIC_BASE_URL"], api_key="sim", max_retries=8)


def remote_ids(sim: SimServer) -> list[str]:
    """Every batch the simulator's account holds (all pages)."""
    return [b.id for b in sdk(sim).messages.batches.list(limit=2)]


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


def run(db: str | Path, sim: SimServer, *args: str, check: bool = True) -> Any:
    return cli(*args, "--db", str(db), check=check, timeout=120, **sim_env(sim))


def poll(db: str | Path, sim: SimServer) -> None:
    run(db, sim, "poll", "--until-done", "--interval", "0.02")


def rows(db: str | Path, sim: SimServer, batch: int) -> dict[str, dict[str, Any]]:
    out = run(db, sim, "batches", "download", str(batch)).stdout
    return {r["custom_id"]: r for r in map(json.loads, out.splitlines())}


def test_every_result_type_is_ingested_and_its_failures_resubmitted(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    path = write_requests(tmp_path / "mixed.jsonl", MIXED)
    out = run(any_db, sim, "submit", str(path), "--provider", "anthropic").stdout
    assert "batch 1 (msgbatch_" in out and "10 lines" in out
    poll(any_db, sim)
    got = rows(any_db, sim, 1)
    assert set(got) == set(MIXED)  # every custom_id accounted for
    outcome = {k: (r["outcome"], r["status"], r["error_code"]) for k, r in got.items()}
    assert outcome == {
        **{f"ok-{i}": ("succeeded", "succeeded", None) for i in range(5)},
        "bad-SIM_FAIL_400": ("errored", "failed", "invalid_request_error"),
        "api-SIM_FAIL_500": ("errored", "failed", "api_error"),
        "over-SIM_FAIL_529": ("errored", "failed", "overloaded_error"),
        "late-SIM_EXPIRED": ("expired", "failed", "expired"),
        "stop-SIM_CANCELED": ("cancelled", "cancelled", "cancelled"),
    }
    for i in range(5):
        row = got[f"ok-{i}"]
        # Results come back in any order: each is matched to its own request by custom_id.
        assert row["result"]["content"][0]["text"] == answers.transform(f"say {i}")
        expected = (
            row["input_tokens"] * HALF_PRICE[0] + row["output_tokens"] * HALF_PRICE[1]
        ) / 1e6
        assert row["cost"] == pytest.approx(expected)
    with open_db(any_db) as db:
        kinds = {j.key: j.error_kind for j in db.tx.jobs.list_jobs()}
        assert {j.handler for j in db.tx.jobs.list_jobs()} == {"anthropic_batch"}
    assert kinds["bad-SIM_FAIL_400"] == "invalid_request_error"
    assert kinds["over-SIM_FAIL_529"] == "overloaded_error"
    assert kinds["late-SIM_EXPIRED"] == "expired"
    shown = run(any_db, sim, "batches", "show", "1").stdout
    assert "state partial  (provider status: ended)" in shown
    assert "cancelled 1  errored 3  expired 1  succeeded 5" in shown

    out = run(any_db, sim, "batches", "resubmit", "1").stdout
    assert "4 lines resubmitted as batch 2 (msgbatch_" in out  # not the invalid request
    poll(any_db, sim)
    child = rows(any_db, sim, 2)
    assert set(child) == {
        "api-SIM_FAIL_500",
        "over-SIM_FAIL_529",
        "late-SIM_EXPIRED",
        "stop-SIM_CANCELED",
    }
    assert "resubmit of 1" in run(any_db, sim, "batches", "list").stdout
    assert len(remote_ids(sim)) == 2


def test_results_are_not_in_input_order(sim: SimServer, tmp_path: Path, db_path: Path) -> None:
    ids = [f"r{i:03d}" for i in range(200)]
    run(
        db_path,
        sim,
        "submit",
        str(write_requests(tmp_path / "order.jsonl", ids)),
        "--provider",
        "anthropic",
    )
    poll(db_path, sim)
    [remote] = remote_ids(sim)
    client = sdk(sim)  # kept alive while the results stream in
    streamed = [r.custom_id for r in client.messages.batches.results(remote)]
    assert sorted(streamed) == ids and streamed != ids
    got = rows(db_path, sim, 1)
    assert all(
        got[f"r{i:03d}"]["result"]["content"][0]["text"] == answers.transform(f"say {i}")
        for i in range(200)
    )


def test_invalid_lines_are_refused_before_any_request(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        {
            "custom_id": "ok",
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}],
            },
        },
        {
            "custom_id": "has.dot",
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}],
            },
        },
        {
            "custom_id": "x" * 65,
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}],
            },
        },
        {
            "custom_id": "ok",
            "params": {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}],
            },
        },
        {
            "custom_id": "no-max",
            "params": {"model": MODEL, "messages": [{"role": "user", "content": "a"}]},
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = run(db_path, sim, "submit", str(path), "--provider", "anthropic", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = out.stderr.splitlines()
    assert any(f"{path}:2:" in e and "has.dot" in e for e in errors)
    assert any(f"{path}:3:" in e and "1-64" in e for e in errors)
    assert any(f"{path}:4:" in e and "duplicate custom_id 'ok'" in e for e in errors)
    assert any(f"{path}:5:" in e and "params.max_tokens is required" in e for e in errors)
    assert remote_ids(sim) == []
    assert "no batches" in run(db_path, sim, "batches", "list").stdout


def test_cancel_ends_with_every_line_cancelled(tmp_path: Path, db_path: Path) -> None:
    # Slow validation keeps the batch in progress until the cancel; cancelling is quick.
    with SimServer(SimConfig(speed=1, validating_s=60, cancel_s=0.05)) as sim:
        path = write_requests(tmp_path / "c.jsonl", ["c1", "c2", "c3"])
        run(db_path, sim, "submit", str(path), "--provider", "anthropic")
        assert (
            "cancel requested, now canceling" in run(db_path, sim, "batches", "cancel", "1").stdout
        )
        poll(db_path, sim)
        shown = run(db_path, sim, "batches", "show", "1").stdout
        assert "state cancelled  (provider status: ended)" in shown and "cancelled 3" in shown
        refused = run(db_path, sim, "batches", "cancel", "1", check=False)
        assert refused.returncode != 0 and "already cancelled" in refused.stderr


def test_download_delete_and_import(sim: SimServer, tmp_path: Path, db_path: Path) -> None:
    path = write_requests(tmp_path / "d.jsonl", ["d1", "d2"])
    run(db_path, sim, "submit", str(path), "--provider", "anthropic")
    too_early = run(db_path, sim, "batches", "download", "1", "--delete", check=False)
    assert too_early.returncode != 0 and "once its results are in" in too_early.stderr
    poll(db_path, sim)
    [remote] = remote_ids(sim)
    out = run(db_path, sim, "batches", "download", "1", "-o", str(tmp_path / "o.jsonl"), "--delete")
    assert "wrote 2 lines" in out.stdout and f"deleted {remote}" in out.stderr
    assert remote_ids(sim) == [] and len((tmp_path / "o.jsonl").read_text().splitlines()) == 2
    with open_db(db_path) as db:
        events = db.read(lambda tx: tx.events.batch_events(1))
    assert (f"{remote} deleted remotely; by {os_user()} via cli") in [e.detail for e in events]

    # A batch submitted elsewhere (straight through the SDK) is imported, then ingested.
    other = sdk(sim).messages.batches.create(
        requests=[
            {
                "custom_id": f"e{i}",
                "params": {
                    "model": MODEL,
                    "max_tokens": 9,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            }
            for i in range(3)
        ]
    )
    out = run(db_path, sim, "batches", "import", "--provider", "anthropic").stdout
    assert out.strip() == "imported 1 batches: 2"
    poll(db_path, sim)
    imported = rows(db_path, sim, 2)
    assert {k: r["outcome"] for k, r in imported.items()} == {
        f"e{i}": "succeeded" for i in range(3)
    }
    assert f"remote {other.id}" in run(db_path, sim, "batches", "show", "2").stdout
    assert (
        "imported 0 batches"
        in run(db_path, sim, "batches", "import", "--provider", "anthropic").stdout
    )


def test_faults_on_every_call_leave_exactly_one_remote_batch(tmp_path: Path, db_path: Path) -> None:
    # 20% of calls answer 429/500/529; a third of creates are carried out but answered 500.
    config = SimConfig(speed=1000, fault_rate=0.2, lost_response_rate=0.34, seed=7)
    with SimServer(config) as sim:
        for n in range(3):
            path = write_requests(tmp_path / f"f{n}.jsonl", [f"f{n}-{i}" for i in range(50)])
            run(db_path, sim, "submit", str(path), "--provider", "anthropic", check=False)
        run(db_path, sim, "batches", "reconcile", check=False)  # whatever a failed submit left
        poll(db_path, sim)
        with open_db(db_path) as db:
            local = db.tx.batches.list_batches()
            jobs = db.tx.jobs.list_jobs()
            created = [e.detail or "" for b in local for e in db.tx.events.batch_events(b.id)]
        # Some creates were answered 500 after being carried out, and were found, not redone.
        assert any("found after an ambiguous create error" in d for d in created)
        assert sorted(b.remote_id or "" for b in local) == sorted(remote_ids(sim))
        assert len(local) == 3 and {b.state for b in local} == {"succeeded"}
        assert len(jobs) == 150 and {j.status for j in jobs} == {"succeeded"}


def test_kill_between_create_and_recording_its_id_is_adopted_by_reconcile(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created, release = threading.Event(), threading.Event()
    original = AnthropicStore.create

    def held(self: AnthropicStore, body: bytes, base_url: str) -> Any:
        # The provider accepts the batch, then its answer is held until the client is dead.
        result = original(self, body, base_url)
        created.set()
        release.wait(30)
        return result

    with SimServer(SimConfig(speed=1000)) as sim:
        monkeypatch.setattr(AnthropicStore, "create", held)
        path = write_requests(tmp_path / "crash.jsonl", ["k1", "k2", "k3"])
        kill_submit_at_create(
            sim, db_path, path, created, release, "--provider", "anthropic", environ=sim_env(sim)
        )
        monkeypatch.setattr(AnthropicStore, "create", original)
        [remote] = remote_ids(sim)
        with open_db(db_path) as db:
            [stuck] = db.tx.batches.list_batches()
        assert (stuck.state, stuck.remote_id) == ("submitting", None)
        out = run(db_path, sim, "batches", "reconcile").stdout
        assert out.strip() == f"batch {stuck.id}: found {remote}"
        poll(db_path, sim)
        assert remote_ids(sim) == [remote]  # never a second create
        shown = run(db_path, sim, "batches", "show", str(stuck.id)).stdout
        assert f"remote {remote}" in shown and "succeeded 3" in shown
        assert "nothing to reconcile" in run(db_path, sim, "batches", "reconcile").stdout


#: Runs `batchdash ARGS` and prints its peak RSS and its peak of Python allocations, in KiB,
#: on stderr's last line. Allocations are traced once the provider SDKs are imported: their
#: imports are the same whatever the batch, and traced they took 7 s of each run.
_PEAK_RSS = (
    "import resource, runpy, sys, tracemalloc\n"
    "import anthropic, openai\n"
    "tracemalloc.start()\n"
    "sys.argv = ['batchdash', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('batchdash', run_name='__main__')\n"
    "finally:\n"
    "    peak = tracemalloc.get_traced_memory()[1] // 1024\n"
    "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak, file=sys.stderr)\n"
)


def _ingest_peak_kib(sim: SimServer, tmp_path: Path, n: int) -> tuple[int, int]:
    """Peak RSS and peak Python allocations (KiB) of the `poll` process that ingests an
    n-request batch (submitted before)."""
    db = tmp_path / f"rss{n}.db"
    path = write_requests(tmp_path / f"rss{n}.jsonl", [f"m{i}" for i in range(n)])
    run(db, sim, "submit", str(path), "--provider", "anthropic")
    args = ("poll", "--until-done", "--interval", "0.02", "--db", str(db))
    out = cli_python(_PEAK_RSS, *args, **sim_env(sim))
    with open_db(db) as store:
        assert store.tx.items.batch_outcome_counts(1) == {"succeeded": n}
    rss, python = out.stderr.strip().splitlines()[-1].split()
    return int(rss), int(python)


def cli_python(code: str, *args: str, **env: str) -> Any:
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(**env),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_20000_request_batch_is_ingested_in_flat_memory(sim: SimServer, tmp_path: Path) -> None:
    small = _ingest_peak_kib(sim, tmp_path, 2_000)
    big = _ingest_peak_kib(sim, tmp_path, 20_000)
    print(f"ingesting poller, peak RSS / Python KiB: 2,000 → {small}, 20,000 → {big}")
    # Ten times the results, streamed in chunks of INGEST_CHUNK (5,000): the Python heap
    # holds at most two parsed chunks whatever the batch size (2,000 fit in one).
    assert big[1] - small[1] < 12 * 1024
    assert big[0] - small[0] < 40 * 1024


async def test_a_file_over_the_limits_is_sent_as_linked_shards(
    sim: SimServer, tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sim_env(sim).items():
        monkeypatch.setenv(name, value)
    path = write_requests(tmp_path / "shards.jsonl", [f"s{i}" for i in range(7)])
    async with await open_db_async(db_path) as db:
        # The real limits (100,000 requests, 256 MB) scaled down to 3 requests per batch.
        ids = await anthropic_batch.submit_file(db, path, queue="shards", max_requests=3)
    assert len(ids) == 3 and len(remote_ids(sim)) == 3
    poll(db_path, sim)
    with open_db(db_path) as store:
        shards = [store.tx.batches.get_batch(i) for i in ids]
    assert [(b.shard_index, b.shard_count, b.total, b.state) for b in shards] == [
        (0, 3, 3, "succeeded"),
        (1, 3, 3, "succeeded"),
        (2, 3, 1, "succeeded"),
    ]
    assert {c for b in ids for c in rows(db_path, sim, b)} == {f"s{i}" for i in range(7)}


async def test_a_crash_before_create_was_sent_is_created_once_by_reconcile(
    sim: SimServer, tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sim_env(sim).items():
        monkeypatch.setenv(name, value)
    path = write_requests(tmp_path / "intent.jsonl", ["i1", "i2"])
    plan = anthropic_input.validate_file(path)
    async with await open_db_async(db_path) as db:
        # What submit_file records before `create`; the process "dies" right after.
        [batch_id] = await db.write(
            lambda tx: batches.record_intent(
                tx, plan, queue="intent", metadata={}, now=time.time(), provider="anthropic"
            )
        )
        assert await anthropic_batch.reconcile(db) == [(batch_id, "submitted", False)]
        assert await anthropic_batch.reconcile(db) == []
    [remote] = remote_ids(sim)
    with open_db(db_path) as store:
        assert store.tx.batches.get_batch(batch_id).remote_id == remote
