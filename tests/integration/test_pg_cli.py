"""PostgreSQL from the command line: a URL with a password is never shown nor put in a worker's
argv, workers keep their PID files in the state folder, a worker this host cannot signal
stops through the database, and the demo runs on an empty server database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.db import parse_location
from batchdash.core.worker import pid_dir
from tests.conftest import cli, wait_until

FAST_WORKER = ("--heartbeat", "0.2", "--poll", "0.05")


@pytest.fixture
def url(pg_url: str) -> Iterator[str]:
    """The test database's URL with a password (the test server trusts anyone)."""
    secret = pg_url.replace("postgresql://postgres@", "postgresql://postgres:secret@", 1)
    try:
        yield secret
    finally:
        cli("workers", "stop", "--all", "--db", secret, check=False)


def _no_secret(*results: object) -> None:
    for result in results:
        text = getattr(result, "stdout", "") + getattr(result, "stderr", "")
        assert "secret" not in text, text


def test_workers_on_a_server_never_see_its_password_in_argv(tmp_path: Path, url: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"key": f"k{i}", "payload": {}}) + "\n" for i in range(5)))
    enqueued = cli("enqueue", str(jobs), "--db", url, "--handler", "sim")
    started = cli("workers", "start", "-n", "2", "--db", url, *FAST_WORKER)
    folder = pid_dir(parse_location(url))
    assert str(folder) in started.stdout and len(list(folder.glob("*.pid"))) == 2
    for pid_file in folder.glob("*.pid"):
        pid = json.loads(pid_file.read_text())["pid"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"postgres" not in argv and b"secret" not in argv
    wait_until(
        lambda: '"succeeded": 5' in cli("--once", "--json", "--db", url, check=False).stdout,
        30,
        what="5 jobs done",
    )
    text = cli("--once", "--db", url, check=False)
    data = json.loads(cli("--once", "--json", "--db", url, check=False).stdout)
    assert data["db"] == url.replace(":secret@", ":***@")
    listing = cli("workers", "list", "--db", url)
    _no_secret(enqueued, started, text, listing)
    assert "HOST" in listing.stdout
    stopped = cli("workers", "stop", "--db", url)
    assert stopped.stdout == "stopped 2 workers\n"
    for log in folder.glob("*.log"):
        assert "secret" not in log.read_text()


def test_a_worker_of_another_host_stops_through_the_server(tmp_path: Path, url: str) -> None:
    elsewhere = str(tmp_path / "other-host-state")
    cli("workers", "start", "--db", url, *FAST_WORKER, XDG_STATE_HOME=elsewhere)
    listing = json.loads(cli("workers", "list", "--json", "--db", url).stdout)["workers"]
    (worker,) = listing
    stopped = cli("workers", "stop", "--host", worker["host"], "--db", url, "--timeout", "20")
    assert stopped.stdout == "stopped 1 workers\n"
    after = json.loads(cli("workers", "list", "--json", "--db", url).stdout)["workers"]
    assert [w["state"] for w in after] == ["stopped"]


def test_the_demo_runs_on_an_empty_server_database(tmp_path: Path, url: str) -> None:
    args = ("demo", "--db", url, "--dir", str(tmp_path), "--jobs", "10", "--headless-for", "3")
    proc = cli(*args, timeout=120)
    assert "demo after 3s:" in proc.stdout
    _no_secret(proc)
    once = json.loads(cli("--once", "--json", "--db", url, check=False).stdout)
    assert once["jobs"]["total"] >= 10
    assert all(w["state"] == "stopped" for w in once["workers"])
