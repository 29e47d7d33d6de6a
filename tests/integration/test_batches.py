"""Remote batches end to end: the real openai SDK over real HTTP against the simulator.

Each test runs a `SimServer` at high speed, points OPENAI_BASE_URL at it and drives
`core.providers.openai_batch` / `core.sync` on a real SQLite file (or the CLI as a real
process). Waiting is always a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchdash.core.db import open_store, open_sync_store
from batchdash.core.db.ports import Store
from batchdash.core.models import BatchItem, ItemOutcome, Job
from batchdash.core.providers import openai_batch
from batchdash.core.sim.server import SimConfig, SimServer
from batchdash.core.sync import run_cycle
from tests.conftest import cli, is_postgres, open_db, open_db_async

CHAT = "/v1/chat/completions"


def write_requests(path: Path, ids: list[str], *, model: str = "gpt-4o-mini") -> Path:
    """A batch-style JSONL file, one chat request per custom_id."""
    with path.open("w") as out:
        for i, custom_id in enumerate(ids):
            body = {"model": model, "messages": [{"role": "user", "content": f"say {i}"}]}
            out.write(
                json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body})
            )
            out.write("\n")
    return path


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    """A fast simulator, with the environment pointing the client at it."""
    with SimServer(SimConfig(speed=1000)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim-key")
        yield server


async def follow(db: Store, timeout: float = 30.0) -> None:
    """Run poll cycles until no batch is left to poll or ingest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await run_cycle(db)
        if not await db.read(
            lambda c: c.batches.batches_due(float("inf")) + c.batches.submitting_batches()
        ):
            return
        await _nap()
    raise AssertionError("batches still unfinished at the deadline")


async def _nap() -> None:
    await asyncio.sleep(0.02)


def items(db_path: Path | str, batch_id: int) -> dict[str, BatchItem]:
    with open_db(db_path) as s:
        return {i.custom_id: i for i in s.tx.items.list_batch_items(batch_id)}


def jobs_by_key(db_path: Path | str) -> dict[str, Job]:
    with open_db(db_path) as s:
        return {j.key: j for j in s.tx.jobs.list_jobs()}


def batch(db_path: Path | str, ref: int | str) -> Any:
    with open_db(db_path) as s:
        return s.tx.batches.get_batch(ref)


def remote_batches(sim: SimServer) -> list[Any]:
    import openai

    client = openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=3)
    return list(client.batches.list(limit=100))


# --------------------------------------------------------------------------- happy path


async def test_submit_poll_ingest_every_line(sim: SimServer, tmp_path: Path, any_db: str) -> None:
    db_path = any_db
    ids = [f"paper-{i:03d}" for i in range(40)]
    path = write_requests(tmp_path / "papers.jsonl", ids)
    async with await open_db_async(db_path) as db:
        [batch_id] = await openai_batch.submit_file(db, path, queue="papers")
        await follow(db)
    b = batch(db_path, batch_id)
    assert (b.state, b.raw_status, b.total) == ("succeeded", "completed", 40)
    assert b.ingested_at is not None and b.input_tokens > 0 and b.cost > 0
    assert set(items(db_path, batch_id)) == set(ids)
    jobs = jobs_by_key(db_path)
    assert {j.status for j in jobs.values()} == {"succeeded"}
    first = jobs["paper-000"]
    assert first.queue == "papers" and first.batch_id == batch_id
    assert first.result["choices"][0]["message"]["content"]
    assert first.cost is not None and first.input_tokens
    assert sum(j.cost or 0 for j in jobs.values()) == pytest.approx(b.cost)
    # The key never reaches the store, whatever table.
    if not is_postgres(db_path):
        assert b"sim-key" not in Path(db_path).read_bytes()


async def test_per_line_quirks_become_outcomes(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    ids = ["ok-1", "ok-2", "a-errline", "b-non2xx", "c-missing"]
    path = write_requests(tmp_path / "mixed.jsonl", ids)
    async with await open_store(db_path) as db:
        [batch_id] = await openai_batch.submit_file(db, path, queue="mixed")
        await follow(db)
    got = {cid: i.outcome for cid, i in items(db_path, batch_id).items()}
    assert got == {
        "ok-1": "succeeded",
        "ok-2": "succeeded",
        "a-errline": "errored",
        "b-non2xx": "non_2xx",
        "c-missing": "missing",
    }
    jobs = jobs_by_key(db_path)
    assert [
        (jobs[c].status, jobs[c].error_kind) for c in ("a-errline", "b-non2xx", "c-missing")
    ] == [
        ("failed", "errored"),
        ("failed", "non_2xx"),
        ("failed", "missing"),
    ]
    b = batch(db_path, batch_id)
    # The provider said "completed" (the non-2xx and missing lines even count as completed).
    assert (b.state, b.raw_status) == ("partial", "completed")


@pytest.mark.parametrize(
    ("quirk", "state", "outcome"),
    [("all_failed", "partial", "errored"), ("empty_error_file", "succeeded", "succeeded")],
)
async def test_batch_level_file_quirks(
    sim: SimServer, tmp_path: Path, db_path: Path, quirk: str, state: str, outcome: str
) -> None:
    path = write_requests(tmp_path / "q.jsonl", ["x1", "x2", "x3"])
    async with await open_store(db_path) as db:
        [batch_id] = await openai_batch.submit_file(
            db, path, queue="q", metadata={"sim_quirk": quirk}
        )
        await follow(db)
    b = batch(db_path, batch_id)
    assert b.state == state and b.poll_error is None
    # all_failed: completed with no output file; empty_error_file: error_file_id "".
    assert b.output_file_id is None if quirk == "all_failed" else b.error_file_id is None
    assert {i.outcome for i in items(db_path, batch_id).values()} == {outcome}


async def test_token_limit_fails_validation_with_errors(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "t.jsonl", ["t1", "t2"])
    async with await open_store(db_path) as db:
        [batch_id] = await openai_batch.submit_file(
            db, path, queue="t", metadata={"sim_quirk": "token_limit"}
        )
        await follow(db)
    b = batch(db_path, batch_id)
    assert (b.state, b.raw_status) == ("failed", "failed")
    assert b.errors[0]["code"] == "token_limit_exceeded"
    assert {i.error_code for i in items(db_path, batch_id).values()} == {"token_limit_exceeded"}
    shown = cli("batches", "show", str(batch_id), "--db", str(db_path)).stdout
    assert "token_limit_exceeded" in shown


# --------------------------------------------------------------------------- expiry, resubmit


async def test_expired_keeps_partial_results_and_resubmit_sends_exactly_the_failures(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    db_path = any_db
    ids = [f"e-{i:02d}" for i in range(10)] + ["z-errline", "z-non2xx", "z-missing"]
    path = write_requests(tmp_path / "exp.jsonl", ids)
    async with await open_db_async(db_path) as db:
        [parent] = await openai_batch.submit_file(
            db, path, queue="exp", metadata={"sim_quirk": "expire"}
        )
        await follow(db)
        outcomes = {cid: i.outcome for cid, i in items(db_path, parent).items()}
        assert batch(db_path, parent).state == "expired"
        assert "succeeded" in outcomes.values() and "expired" in outcomes.values()
        failed = {c for c, o in outcomes.items() if o != ItemOutcome.SUCCEEDED}
        child = await openai_batch.resubmit_batch(db, parent)
        with pytest.raises(ValueError, match="already resubmitted"):
            await openai_batch.resubmit_batch(db, parent)
        await follow(db)
    c = batch(db_path, child)
    assert c.parent_id == parent and c.remote_id and c.remote_id != batch(db_path, parent).remote_id
    assert set(items(db_path, child)) == failed
    # The jobs now belong to the child; succeeded ones stayed with the parent.
    jobs = jobs_by_key(db_path)
    assert {jobs[k].batch_id for k in failed} == {child}
    assert all(jobs[k].batch_id == parent for k in set(ids) - failed)
    assert len(remote_batches(sim)) == 2


# --------------------------------------------------------------------------- cancel


async def test_cancel_tracks_cancelling_and_keeps_partial_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_path: Path
) -> None:
    config = SimConfig(speed=100, lines_per_second=2, slow_cancel_s=30)
    with SimServer(config) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        path = write_requests(tmp_path / "c.jsonl", [f"c-{i:03d}" for i in range(400)])
        async with await open_store(db_path) as db:
            [batch_id] = await openai_batch.submit_file(
                db, path, queue="c", metadata={"sim_quirk": "slow_cancel"}
            )
            deadline = time.monotonic() + 20
            while batch(db_path, batch_id).completed < 5:
                assert time.monotonic() < deadline, "batch never made progress"
                await run_cycle(db)
                await _nap()
            await openai_batch.cancel_batch(db, batch_id)
            b = batch(db_path, batch_id)
            assert (b.state, b.raw_status) == ("cancelling", "cancelling")
            assert b.cancelling_at is not None
            await follow(db)
    b = batch(db_path, batch_id)
    assert (b.state, b.raw_status) == ("cancelled", "cancelled")
    outcomes = [i.outcome for i in items(db_path, batch_id).values()]
    assert "succeeded" in outcomes and "cancelled" in outcomes
    jobs = jobs_by_key(db_path)
    assert {j.status for j in jobs.values()} == {"succeeded", "cancelled"}


# --------------------------------------------------------------------------- durability


async def test_ambiguous_create_is_reconciled_not_duplicated(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "amb.jsonl", ["a1", "a2", "a3"])
    async with await open_store(db_path) as db:
        [batch_id] = await openai_batch.submit_file(
            db, path, queue="amb", metadata={"sim_quirk": "ambiguous_create"}
        )
        await follow(db)
    remotes = remote_batches(sim)
    assert len(remotes) == 1
    b = batch(db_path, batch_id)
    assert b.remote_id == remotes[0].id and b.state == "succeeded"
    with open_sync_store(db_path) as s:
        kinds = [e.kind for e in s.tx.events.batch_events(batch_id)]
        created = [
            e.detail for e in s.tx.events.batch_events(batch_id) if e.kind == "batch_created"
        ]
    assert "batch_created" in kinds and "ambiguous" in str(created)


async def test_twenty_percent_faults_still_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_path: Path
) -> None:
    with SimServer(SimConfig(speed=1000, fault_rate=0.2, seed=7)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        ids = [f"f-{i:03d}" for i in range(60)] + ["f-errline", "f-missing"]
        path = write_requests(tmp_path / "faults.jsonl", ids)
        async with await open_store(db_path) as db:
            [batch_id] = await openai_batch.submit_file(db, path, queue="faults")
            await follow(db, timeout=45)
        server.config.fault_rate = 0.0
        assert len(remote_batches(server)) == 1
    got = items(db_path, batch_id)
    assert got["f-errline"].outcome == "errored" and got["f-missing"].outcome == "missing"
    assert sum(i.outcome == "succeeded" for i in got.values()) == 60
    assert batch(db_path, batch_id).state == "partial"


async def test_shards_are_linked_batches(sim: SimServer, tmp_path: Path, db_path: Path) -> None:
    ids = [f"s-{i:03d}" for i in range(25)]
    path = write_requests(tmp_path / "shards.jsonl", ids)
    async with await open_store(db_path) as db:
        batch_ids = await openai_batch.submit_file(db, path, queue="sh", max_lines=10)
        await follow(db)
    shards = [batch(db_path, i) for i in batch_ids]
    assert [(s.shard_index, s.shard_count, s.total) for s in shards] == [
        (0, 3, 10),
        (1, 3, 10),
        (2, 3, 5),
    ]
    assert all(s.state == "succeeded" for s in shards)
    assert {r.metadata["batchdash_shard"] for r in remote_batches(sim)} == {"1/3", "2/3", "3/3"}


async def test_import_adopts_batches_submitted_elsewhere(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    import openai

    client = openai.OpenAI(base_url=sim.base_url, api_key="x")
    path = write_requests(tmp_path / "other.jsonl", ["o-1", "o-2", "o-errline"])
    for _ in range(2):
        uploaded = client.files.create(file=path.open("rb"), purpose="batch")
        client.batches.create(input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h")
    async with await open_store(db_path) as db:
        adopted = await openai_batch.import_batches(db, queue="elsewhere")
        assert len(adopted) == 2
        assert await openai_batch.import_batches(db) == []
        await follow(db)
    for batch_id in adopted:
        b = batch(db_path, batch_id)
        assert (b.state, b.total) == ("partial", 3)
        assert {i.outcome for i in items(db_path, batch_id).values()} == {"succeeded", "errored"}
    assert len(jobs_by_key(db_path)) == 6  # keyed remote_id/custom_id: no collisions


async def test_no_key_records_a_clear_poll_error(
    sim: SimServer, tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_requests(tmp_path / "k.jsonl", ["k1"])
    async with await open_store(db_path) as db:
        empty = await run_cycle(db)  # nothing to poll: no key needed
        assert empty.errors == []
        [batch_id] = await openai_batch.submit_file(
            db, path, queue="k", metadata={"sim_quirk": "stall_finalizing"}
        )
        monkeypatch.delenv("OPENAI_API_KEY")
        report = await run_cycle(db)
    assert report.polled == 0 and "OPENAI_API_KEY" in report.errors[0]
    b = batch(db_path, batch_id)
    assert "OPENAI_API_KEY" in str(b.poll_error) and b.polled_at and b.poll_failures == 1
