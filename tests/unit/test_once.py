"""`batchdash --once`: golden text and JSON on the frozen showcase, exit codes, edge cases.

Golden files live in tests/unit/golden/; regenerate them with UPDATE_GOLDEN=1 after a
deliberate change of the output, and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core import snapshot
from batchdash.core.db import SCHEMA_VERSION, DbLocation, open_sync_store, parse_location
from batchdash.core.models import NewJob, Worker
from batchdash.tui import once, showcase
from tests.conftest import cli, open_db

GOLDEN = Path(__file__).parent / "golden"
SHOWN_PATH = DbLocation(path=Path("showcase.db"))


def golden(name: str, text: str, where: DbLocation) -> None:
    """Compare with the golden file (SQLite writes it under UPDATE_GOLDEN=1).

    PostgreSQL stamps workers' start and heartbeat times with the server's clock, not the
    showcase's frozen one, so on it the worker rows (and their staleness) are left out of
    both sides: every other figure must be the same on both back ends.
    """
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") and not where.is_postgres:
        path.write_text(text)
    expected = path.read_text()
    if where.is_postgres:
        text, expected = _without_workers(text, name), _without_workers(expected, name)
    assert text == expected, f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def _without_workers(text: str, name: str) -> str:
    if name.endswith(".json"):
        data = json.loads(text)
        data.pop("workers", None)
        data["attention"] = [a for a in data["attention"] if not a.startswith("worker ")]
        return json.dumps(data, indent=2)
    text = re.sub(r"workers\n(  .*\n)+\n?", "", text)
    return re.sub(r"; worker \S+ stale", "", text)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def showcase_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DbLocation]:
    """The showcase on each back end: the goldens hold for both (shown as SHOWN_PATH)."""
    if request.param == "sqlite":
        where = DbLocation(path=tmp_path_factory.mktemp("showcase") / "showcase.db")
        showcase.seed(where)
        yield where
        return
    server = request.getfixturevalue("pg_server")
    url = server.create_database(template=request.getfixturevalue("pg_template"))
    showcase.seed(parse_location(url))
    yield parse_location(url)
    server.drop_database(url)


def summary(where: DbLocation) -> snapshot.Summary:
    with open_sync_store(where, readonly=True) as db:
        return db.read(lambda conn: snapshot.summary(conn, showcase.NOW))


def test_text_matches_golden(showcase_db: DbLocation) -> None:
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, once.SECTIONS, out)
    golden("once.txt", out.getvalue(), showcase_db)


def test_sections_choose_what_is_printed(showcase_db: DbLocation) -> None:
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, ["workers"], out)
    golden("once_workers.txt", out.getvalue(), showcase_db)


def test_json_matches_golden_with_stable_keys(showcase_db: DbLocation) -> None:
    data = once.to_json(summary(showcase_db), SHOWN_PATH)
    assert {"jobs", "queues", "batches", "workers", "qa", "generated_at"} <= set(data)
    golden("once.json", json.dumps(data, indent=2) + "\n", showcase_db)


def test_spend_shows_work_and_qa_and_their_sum(showcase_db: DbLocation) -> None:
    jobs = once.to_json(summary(showcase_db), SHOWN_PATH)["jobs"]
    assert jobs["qa_cost"] > 0
    assert jobs["total_cost"] == pytest.approx(jobs["cost"] + jobs["qa_cost"])
    out = io.StringIO()
    once.write_text(summary(showcase_db), SHOWN_PATH, ["overview"], out)
    assert "spend $0.0192 (work $0.0128 + QA $0.0064)" in out.getvalue()


def test_showcase_needs_attention_for_failures_and_stale_worker(showcase_db: DbLocation) -> None:
    # On PostgreSQL the showcase's workers beat by the server's clock: none is stale.
    stale = [] if showcase_db.is_postgres else ["worker gpu-box-4123-c9d4 stale"]
    assert summary(showcase_db).attention == ["7 failed jobs", "batch 2 partial", *stale]


def _healthy_db(path: Path | str) -> None:
    with open_db(path) as db:
        db.write(lambda c: c.jobs.enqueue("q", "sim", [NewJob("a", {})], time.time(), None))


def test_exit_0_when_nothing_needs_attention_and_plain_text_off_a_tty(any_db: str) -> None:
    _healthy_db(any_db)
    proc = cli("--db", any_db, "--once")
    assert proc.returncode == 0
    assert "nothing needs attention" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_exit_1_on_failed_jobs_with_json(showcase_db: DbLocation) -> None:
    proc = cli("--db", showcase_db.setting, "--once", "--json", check=False)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["jobs"]["by_status"]["failed"] == 7
    assert data["attention"][0] == "7 failed jobs"


def test_exit_1_on_a_dead_worker(any_db: str) -> None:
    _healthy_db(any_db)
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
    with open_db(any_db) as db:
        db.write(lambda c: c.workers.register_worker(gone))
    proc = cli("--db", any_db, "--once", check=False)
    assert proc.returncode == 1
    assert "worker w-dead dead" in proc.stdout


@pytest.mark.sqlite_only
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


@pytest.mark.sqlite_only
def test_exit_2_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("this is not sqlite\n" * 100)
    proc = cli("--db", str(path), "--once", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("batchdash: error:") and proc.stderr.count("\n") == 1


@pytest.mark.sqlite_only
def test_exit_2_on_a_newer_schema(db_path: Path) -> None:
    _healthy_db(db_path)
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    proc = cli("--db", str(db_path), "--once", check=False)
    assert proc.returncode == 2
    assert "newer than this batchdash" in proc.stderr
