"""Several pollers at once, batches that remember their endpoint, and submits that cannot be.

Real `batchdash poll` processes against a real simulator over HTTP, one SQLite file (and one
PostgreSQL database for the pollers):
- three pollers over twenty batches: every batch ends terminal, is ingested exactly once
  (one outcome per line, one final event per job, batch totals), and `poll --until-done`
  exits;
- two `poll` daemons on one batch ingest it once (both back ends);
- a batch is polled at the endpoint it was submitted to, whatever OPENAI_BASE_URL says;
- a batch that cannot be submitted or reached makes `poll --until-done` stop with the
  reason, and `--once` report it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_store, open_sync_store
from batchdash.core.providers import openai_batch
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db, open_db_async, spawn, wait_until
from tests.integration.test_batches import write_requests


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=200)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        yield server


def env(sim: SimServer, key: str = "sim") -> dict[str, str]:
    return {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": key}


def query(db_path: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` (portable SQL, no parameters) on either back end."""
    with open_db(db_path) as s:
        rows = s.conn.execute(sql).fetchall()
    # PostgreSQL rows are dicts (psycopg's dict_row), SQLite's are sqlite3.Row.
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


async def test_three_pollers_finish_every_batch_and_ingest_each_once(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    db_path = any_db
    ids = [f"line-{i:02d}-errline" if i % 7 == 3 else f"line-{i:02d}" for i in range(20)]
    path = write_requests(tmp_path / "many.jsonl", ids)
    async with await open_db_async(db_path) as db:
        # One line per shard: twenty batches, all in flight at once.
        batch_ids = await openai_batch.submit_file(db, path, queue="many", max_lines=1)
    assert len(batch_ids) == 20
    poll = ("poll", "--until-done", "--interval", "0.01", "--db", db_path)
    pollers = [spawn(*poll, **env(sim)) for _ in range(3)]
    try:
        wait_until(
            lambda: all(p.poll() is not None for p in pollers),
            timeout=60,
            what="every `poll --until-done` to exit",
        )
    finally:
        stop(pollers)
    outputs = [p.stdout.read() if p.stdout else "" for p in pollers]
    assert [p.returncode for p in pollers] == [0, 0, 0], outputs
    states = query(db_path, "SELECT state, count(*) FROM batches GROUP BY state ORDER BY state")
    assert states == [("partial", 3), ("succeeded", 17)]
    ingests = query(
        db_path,
        "SELECT b.id, count(e.id) FROM batches b LEFT JOIN events e "
        "ON e.batch_id = b.id AND e.kind = 'batch_ingested' GROUP BY b.id",
    )
    assert {n for _, n in ingests} == {1}
    per_job = query(
        db_path,
        "SELECT j.id, count(e.id) FROM jobs j LEFT JOIN events e ON e.job_id = j.id "
        "AND e.kind IN ('succeeded', 'failed', 'cancelled') GROUP BY j.id",
    )
    assert len(per_job) == 20 and {n for _, n in per_job} == {1}
    outcomes = query(
        db_path,
        "SELECT outcome, count(*) FROM batch_items WHERE outcome IS NOT NULL "
        "GROUP BY outcome ORDER BY outcome",
    )
    assert outcomes == [("errored", 3), ("succeeded", 17)]
    totals = query(
        db_path, "SELECT sum(total) AS t, sum(completed) AS c, sum(failed) AS f FROM batches"
    )
    assert totals == [(20, 17, 3)]
    leases = query(db_path, "SELECT count(*) FROM batches WHERE poll_owner IS NOT NULL")
    assert leases == [(0,)]


async def test_two_poll_daemons_on_one_batch_ingest_it_once(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    ids = [f"one-{i:02d}-errline" if i % 5 == 0 else f"one-{i:02d}" for i in range(30)]
    path = write_requests(tmp_path / "one.jsonl", ids)
    async with await open_db_async(any_db) as db:
        [batch_id] = await openai_batch.submit_file(db, path, queue="one")
    daemons = [spawn("poll", "--interval", "0.01", "--db", any_db, **env(sim)) for _ in range(2)]
    try:
        wait_until(
            lambda: query(any_db, "SELECT state FROM batches") == [("partial",)],
            timeout=60,
            what="the batch to be ingested",
        )
        # Neither daemon tripped over the other's writes: both still run.
        assert [p.poll() for p in daemons] == [None, None]
    finally:
        stop(daemons)
    ingests = (
        f"SELECT count(*) AS n FROM events WHERE kind = 'batch_ingested' AND batch_id = {batch_id}"
    )
    assert query(any_db, ingests) == [(1,)]
    finals = query(
        any_db,
        "SELECT e.kind, count(*) FROM events e JOIN jobs j ON j.id = e.job_id "
        "WHERE e.kind IN ('succeeded', 'failed', 'cancelled') GROUP BY e.kind ORDER BY e.kind",
    )
    assert finals == [("failed", 6), ("succeeded", 24)]
    outcomes = query(
        any_db, "SELECT outcome, count(*) FROM batch_items GROUP BY outcome ORDER BY outcome"
    )
    assert outcomes == [("errored", 6), ("succeeded", 24)]
    totals = "SELECT total AS t, completed AS c, failed AS f FROM batches"
    assert query(any_db, totals) == [(30, 24, 6)]


def test_a_late_poll_never_moves_a_batch_backwards_and_a_claim_is_exclusive(
    db_path: Path,
) -> None:

    with open_sync_store(db_path) as s:
        new = NewBatch(queue="q", endpoint="/v1/chat/completions", model="m")
        batch_id = s.write(lambda c: c.batches.add_batch(new, 1.0))

        def poll(raw: str) -> bool:
            fields = {"raw_status": raw, "state": "finalizing" if raw == "completed" else raw}
            return s.write(lambda c: c.batches.record_remote(batch_id, fields, 2.0))

        assert poll("in_progress") and poll("completed")
        assert not poll("finalizing") and not poll("in_progress")  # answers that came late
        assert s.tx.batches.get_batch(batch_id).raw_status == "completed"
        first = s.write(lambda c: c.batches.claim_batch_poll(batch_id, "a:1:x", 100.0, 3.0))
        assert first is not None and first.raw_status == "completed"
        assert s.write(lambda c: c.batches.claim_batch_poll(batch_id, "b:2:y", 100.0, 3.0)) is None
        # An expired lease is free; a batch ingested meanwhile has nothing left to claim.
        assert s.write(lambda c: c.batches.claim_batch_poll(batch_id, "b:2:y", 200.0, 150.0))
        assert s.write(lambda c: c.items.close_ingest(batch_id, "succeeded", 4.0))
        assert not s.write(lambda c: c.items.close_ingest(batch_id, "succeeded", 5.0))
        assert (
            s.write(lambda c: c.batches.claim_batch_poll(batch_id, "c:3:z", 400.0, 300.0)) is None
        )
        assert s.tx.batches.get_batch(batch_id).state == "succeeded"


def remote_count(sim: SimServer) -> int:
    return len(sim.store.list_batches(100, None)["data"])


def test_a_batch_is_polled_and_resubmitted_at_the_endpoint_it_was_submitted_to(
    sim: SimServer, tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "here.jsonl", ["h-1", "h-2", "h-errline"])
    db = ("--db", str(db_path))
    cli("submit", str(path), *db, **env(sim))
    with SimServer(SimConfig(speed=200)) as other:
        # Polled, ingested and resubmitted with OPENAI_BASE_URL pointing elsewhere.
        cli("poll", "--until-done", "--interval", "0.02", *db, timeout=30, **env(other))
        cli("batches", "resubmit", "1", *db, **env(other))
        cli("poll", "--until-done", "--interval", "0.02", *db, timeout=30, **env(other))
        assert remote_count(other) == 0
    assert remote_count(sim) == 2
    assert query(db_path, "SELECT id, state, base_url FROM batches") == [
        (1, "partial", sim.base_url),
        (2, "partial", sim.base_url),
    ]


def test_an_unreachable_batch_needs_attention_and_stops_until_done(
    tmp_path: Path, db_path: Path
) -> None:
    with SimServer(SimConfig(speed=200, api_key="right")) as sim:
        path = write_requests(tmp_path / "keyed.jsonl", ["k-1"])
        db = ("--db", str(db_path))
        cli("submit", str(path), *db, **env(sim, "right"))
        once = cli("--once", "--poll", *db, check=False, **env(sim, "wrong"))
        assert once.returncode == 1, once.stdout + once.stderr
        assert "batch 1 unreachable: HTTP 401" in once.stdout
        until_done = ("poll", "--until-done", "--interval", "0.02", *db)
        poll = cli(*until_done, check=False, timeout=30, **env(sim, "wrong"))
        assert poll.returncode == 2
        assert "batch 1 cannot be polled: HTTP 401" in poll.stderr
        # With the right key it finishes, and nothing needs attention any more.
        cli(*until_done, timeout=30, **env(sim, "right"))
        assert cli("--once", *db, check=False).returncode == 0


def test_until_done_stops_on_a_batch_that_cannot_be_submitted(
    tmp_path: Path, db_path: Path
) -> None:
    with SimServer(SimConfig(speed=200, api_key="right")) as sim:
        path = write_requests(tmp_path / "nokey.jsonl", ["n-1"])
        db = ("--db", str(db_path))
        submit = cli("submit", str(path), *db, check=False, **env(sim, "wrong"))
        assert submit.returncode == 2 and "HTTP 401" in submit.stderr
        until_done = ("poll", "--until-done", "--interval", "0.02", *db)
        poll = cli(*until_done, check=False, timeout=30, **env(sim, "wrong"))
        assert poll.returncode == 2
        assert "batch 1 cannot be submitted: HTTP 401" in poll.stderr
        assert "batch 1 unreachable" in cli("--once", *db, check=False).stdout
        assert remote_count(sim) == 0


async def test_lost_responses_leave_no_orphan_uploads(tmp_path: Path, db_path: Path) -> None:
    config = SimConfig(speed=200, lost_response_rate=0.3, seed=7)
    with SimServer(config) as sim, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", sim.base_url)
        mp.setenv("OPENAI_API_KEY", "sim")
        path = write_requests(tmp_path / "lossy.jsonl", [f"l-{i:02d}" for i in range(24)])
        async with await open_store(db_path) as db:
            ids = await openai_batch.submit_file(db, path, queue="lossy", max_lines=1)
        inputs = sim.store.list_files("batch", 1000, None, "desc")["data"]
        used = {b["input_file_id"] for b in sim.store.list_batches(100, None)["data"]}
    assert len(ids) == len(used) == 24
    assert sorted(f["id"] for f in inputs) == sorted(used)
    recorded = query(db_path, "SELECT input_file_id FROM batches WHERE remote_id IS NOT NULL")
    assert {r[0] for r in recorded} == used
