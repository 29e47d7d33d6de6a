"""Which database: a file path or a postgresql:// URL, shown with its password redacted, handed
to spawned workers through the environment, with PID files and logs in the state folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.models import Worker
from batchdash.core.worker import pid_dir
from tests.conftest import cli, wait_until

FAST_WORKER = ("--heartbeat", "0.2", "--poll", "0.05")


def with_password(url: str) -> str:
    """The test server's URL with a password (the server trusts anyone, so it is accepted)."""
    return url.replace("postgresql://postgres@", "postgresql://postgres:secret@", 1)


def test_an_unsupported_scheme_is_one_line_exit_2(db_path: Path) -> None:
    result = cli("jobs", "list", "--db", "mysql://me:secret@db/x", check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "batchdash: error: database mysql://me:***@db/x: unsupported URL scheme 'mysql' "
        "(use a file path for SQLite, or postgresql://…)"
    ]


def test_a_password_in_the_config_file_is_refused(tmp_path: Path, db_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('db = "postgresql://me:secret@db.example/work"\n')
    result = cli("jobs", "list", "--db", str(db_path), check=False, BATCHDASH_CONFIG=str(config))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "db must not hold a password" in line and str(config) in line
    assert "secret" not in line


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql://me:secret@127.0.0.1:1/work?connect_timeout=2"
    result = cli("jobs", "list", "--db", url, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "postgresql://me:***@127.0.0.1:1/work" in line
    assert "secret" not in result.stderr + result.stdout


def test_a_url_with_a_password_never_shows_it(pg_url: str) -> None:
    url = with_password(pg_url)
    shown = url.replace(":secret@", ":***@")
    ready = cli("init", "--db", url)
    assert ready.stdout == f"database ready: {shown}\n"
    listing = cli("workers", "list", "--db", url, BATCHDASH_DB=url)
    for result in (ready, listing):
        assert "secret" not in result.stdout + result.stderr


def test_workers_get_the_database_through_the_environment_not_argv(
    db_path: Path, stop_workers: None
) -> None:
    started = cli("workers", "start", "-n", "1", "--db", str(db_path), *FAST_WORKER).stdout
    pid = int(started.split("(pid ")[1].split(")")[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"--db" not in argv and not any(str(db_path).encode() in a for a in argv)
    assert f"BATCHDASH_DB={db_path}".encode() in environ


def test_pid_files_and_logs_live_in_the_state_folder(db_path: Path, stop_workers: None) -> None:
    started = cli("workers", "start", "--db", str(db_path), *FAST_WORKER).stdout
    folder = pid_dir(DbLocation(path=db_path))
    assert str(folder) in started
    assert len(list(folder.glob("*.pid"))) == 1 and len(list(folder.glob("*.log"))) == 1
    beside = sorted(p.name for p in db_path.parent.iterdir())
    assert all(name.startswith("batchdash.db") for name in beside), beside
    assert not (db_path.parent / "batchdash.db.workers").exists()


def _states(db_path: Path) -> dict[str, str]:
    listing = json.loads(cli("workers", "list", "--json", "--db", str(db_path)).stdout)
    return {w["id"]: w["state"] for w in listing["workers"]}


def test_a_worker_this_host_cannot_signal_is_stopped_through_the_database(
    tmp_path: Path, db_path: Path
) -> None:
    # Its PID file lives in another state folder, as a worker of another host's would.
    elsewhere = str(tmp_path / "other-host-state")
    cli("workers", "start", "--db", str(db_path), *FAST_WORKER, XDG_STATE_HOME=elsewhere)
    (worker_id,) = _states(db_path)
    assert cli("workers", "stop", "--db", str(db_path)).stdout == "no workers running\n"

    stopped = cli("workers", "stop", "--all", "--db", str(db_path), "--timeout", "20")

    assert stopped.stdout == "stopped 1 workers\n"
    assert _states(db_path) == {worker_id: "stopped"}
    log = next((Path(elsewhere)).rglob(f"worker-{worker_id}.log")).read_text()
    assert "stop requested through the database" in log
    wait_until(lambda: not list(Path(elsewhere).rglob("*.pid")), 10, what="pid file removed")


def test_stop_by_an_unknown_id_is_one_line_exit_2(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    result = cli("workers", "stop", "nope", "--db", str(db_path), check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "batchdash: error: no worker 'nope' on this database (see `batchdash workers list`)"
    ]


def test_the_config_file_names_a_server_whose_password_comes_from_libpq(
    tmp_path: Path, pg_url: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'db = "{pg_url}"\n')
    ready = cli("init", BATCHDASH_CONFIG=str(config), PGPASSWORD="secret")
    assert ready.stdout == f"database ready: {pg_url}\n"
    listing = cli("workers", "list", BATCHDASH_CONFIG=str(config), PGPASSWORD="secret")
    assert listing.stdout.startswith("ID") and "secret" not in listing.stdout


def test_a_worker_of_another_host_is_asked_never_signalled(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    # Its pid is a live process here (this test), which must not receive SIGTERM.
    now = time.time()
    remote = Worker("far-1", "far-host", os.getpid(), now, now, 30.0, "busy")
    with open_sync_store(db_path) as s:
        s.write(lambda tx: tx.workers.register_worker(remote))
    result = cli(
        "workers",
        "stop",
        "--host",
        "far-host",
        "--db",
        str(db_path),
        "--timeout",
        "0.3",
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "batchdash: error: still running after 0.3s: far-1\n"
    with open_sync_store(db_path) as s:
        reply = s.write(lambda tx: tx.workers.heartbeat("far-1", "busy", [], 0, 0, 30, now))
    assert reply.stop is True
