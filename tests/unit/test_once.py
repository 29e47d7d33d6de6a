"""`batchdash --once`: golden text and JSON on the frozen showcase, exit codes, edge cases.

Golden files live in tests/unit/golden/; regenerate them with UPDATE_GOLDEN=1 after a
deliberate change of the output, and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from batchdash.core import snapshot
from batchdash.core.db import SCHEMA_VERSION, DbLocation, open_sync_store
from batchdash.core.models import NewJob, Worker
from batchdash.tui import once, showcase
from tests.conftest import cli

GOLDEN = Path(__file__).parent / "golden"
SHOWN_PATH = DbLocation(path=Path("showcase.db"))


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


@pytest.fixture(scope="module")
def showcase_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("showcase") / "showcase.db"
    showcase.seed(path)
    return path


def summary(path: Path) -> snapshot.Summary:
    with open_sync_store(path, readonly=True) as db:
        return db.read(lambda conn: snapshot.summary(conn, showcase.NOW))


def test_text_matches_golden(showcase_db: Path) -> None:
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, once.SECTIONS, out)
    golden("once.txt", out.getvalue())


def test_sections_choose_what_is_printed(showcase_db: Path) -> None:
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, ["workers"], out)
    golden("once_workers.txt", out.getvalue())


def test_json_matches_golden_with_stable_keys(showcase_db: Path) -> None:
    data = once.to_json(summary(showcase_db), SHOWN_PATH)
    assert {"jobs", "queues", "batches", "workers", "qa", "generated_at"} <= set(data)
    golden("once.json", json.dumps(data, indent=2) + "\n")


def test_spend_shows_work_and_qa_and_their_sum(showcase_db: Path) -> None:
    jobs = once.to_json(summary(showcase_db), SHOWN_PATH)["jobs"]
    assert jobs["qa_cost"] > 0
    assert jobs["total_cost"] == pytest.approx(jobs["cost"] + jobs["qa_cost"])
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, ["overview"], out)
    assert "spend $0.0192 (work $0.0128 + QA $0.0064)" in out.getvalue()


def test_showcase_needs_attention_for_failures_and_stale_worker(showcase_db: Path) -> None:
    assert summary(showcase_db).attention == [
        "7 failed jobs",
        "batch 2 partial",
        "worker gpu-box-4123-c9d4 stale",
    ]


def _healthy_db(path: Path) -> None:
    with open_sync_store(path) as db:
        db.write(lambda c: c.jobs.enqueue("q", "sim", [NewJob("a", {})], time.time(), None))


def test_exit_0_when_nothing_needs_attention_and_plain_text_off_a_tty(db_path: Path) -> None:
    _healthy_db(db_path)
    proc = cli("--db", str(db_path), "--once")
    assert proc.returncode == 0
    assert "nothing needs attention" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_exit_1_on_failed_jobs_with_json(showcase_db: Path) -> None:
    proc = cli("--db", str(showcase_db), "--once", "--json", check=False)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["jobs"]["by_status"]["failed"] == 7
    assert data["attention"][0] == "7 failed jobs"


def test_exit_1_on_a_dead_worker(db_path: Path) -> None:
    _healthy_db(db_path)
    now = time.time()
    gone = Worker(
        id="w-dead",
        host=socket.gethostname(),
        pid=2**22 + 12345,  # above pid_max's default: no such process
        started_at=now,
        heartbeat_at=now,
        heartbeat_interval=1.0,
        state="busy",
    )
    with open_sync_store(db_path) as db:
        db.write(lambda c: c.workers.register_worker(gone))
    proc = cli("--db", str(db_path), "--once", check=False)
    assert proc.returncode == 1
    assert "worker w-dead dead" in proc.stdout


def test_missing_database_is_an_error_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "nope.db"
    for extra in ((), ("--json",)):
        proc = cli("--db", str(path), "--once", *extra, check=False)
        assert proc.returncode == 2
        assert proc.stderr == (
            f"batchdash: error: no database at {path} — run `batchdash init` or `batchdash demo`\n"
        )
        assert proc.stdout == ""
    assert not path.parent.exists()


def test_exit_2_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("this is not sqlite\n" * 100)
    proc = cli("--db", str(path), "--once", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("batchdash: error:") and proc.stderr.count("\n") == 1


def test_exit_2_on_a_newer_schema(db_path: Path) -> None:
    _healthy_db(db_path)
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    proc = cli("--db", str(db_path), "--once", check=False)
    assert proc.returncode == 2
    assert "newer than this batchdash" in proc.stderr
