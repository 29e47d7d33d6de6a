"""`batchdash demo`: the real simulator and workers, watched by the app, cleaned up after."""

from __future__ import annotations

import json
import time
from pathlib import Path

from batchdash.core.models import BatchState
from batchdash.tui.app import BatchDashApp
from batchdash.tui.demo import Demo
from tests.conftest import cli
from tests.tui.conftest import SIZE


async def test_demo_flows_to_completion_and_stops_what_it_started(tmp_path: Path) -> None:
    with Demo(tmp_path, jobs=40, workers=2) as demo:
        started = [demo.sim, *demo.procs]
        app = BatchDashApp(demo.where, refresh=0.2, poll_every=1.0)
        async with app.run_test(size=SIZE):
            deadline = time.monotonic() + 90
            while True:
                await app.wait_for_snapshot()
                snap = app.last
                assert snap is not None
                done = snap.overview.counts["succeeded"] + snap.overview.counts["failed"]
                # Both providers' batches end and are ingested (Anthropic's has an expired line).
                batch_done = all(r.batch.ingested_at is not None for r in snap.batches)
                alive = [w for w in snap.workers if w.health == "ok"]
                if done >= 80 and len(snap.batches) == 2 and batch_done and len(alive) == 2:
                    break
                assert time.monotonic() < deadline, f"demo stuck: {snap.overview.counts}"
    assert {r.batch.provider for r in snap.batches} == {"openai", "anthropic"}
    assert {r.batch.state for r in snap.batches} == {BatchState.SUCCEEDED, BatchState.PARTIAL}
    assert all(proc is not None and proc.poll() is not None for proc in started)


def test_headless_demo_smoke(tmp_path: Path) -> None:
    proc = cli("demo", "--dir", str(tmp_path), "--jobs", "20", "--headless-for", "3", timeout=120)
    assert "demo after 3s:" in proc.stdout
    assert (tmp_path / "batchdash.db").exists()
    once = cli("--db", str(tmp_path / "batchdash.db"), "--once", "--json", check=False)
    assert once.returncode in (0, 1)
    assert all(w["state"] == "stopped" for w in json.loads(once.stdout)["workers"])
    # The demo's logs may hold results: owner-only, like the database.
    logs = sorted(tmp_path.rglob("*.log"))
    assert logs and all(log.stat().st_mode & 0o777 == 0o600 for log in logs), logs


def test_demo_runs_on_an_empty_database_given_by_db_and_refuses_a_used_one(
    tmp_path: Path,
) -> None:
    given = tmp_path / "given.db"
    folder = tmp_path / "files"
    args = ("demo", "--db", str(given), "--dir", str(folder), "--jobs", "10")
    proc = cli(*args, "--headless-for", "2", timeout=120)
    assert "demo after 2s:" in proc.stdout
    assert f"its database is {given}" in proc.stderr
    assert not (folder / "batchdash.db").exists()
    once = json.loads(cli("--db", str(given), "--once", "--json", check=False).stdout)
    assert once["jobs"]["total"] >= 10
    again = cli(*args, "--headless-for", "1", check=False, timeout=120)
    assert again.returncode == 2
    assert again.stderr.splitlines()[-1] == (
        f"batchdash: error: {given} already holds jobs; the demo needs an empty database"
    )
