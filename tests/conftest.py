"""Shared test helpers: a temp database, the CLI as a real subprocess, waiting on conditions."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchdash.core.db.ports import Store, SyncStore
from tests.pgserver import PgServer, dbname

ROOT = Path(__file__).resolve().parent.parent

# Tests never read the developer's own ~/.config/batchdash/config.toml, nor write PID files
# and logs into their ~/.local/state.
os.environ["BATCHDASH_CONFIG"] = str(ROOT / "tests" / "no-such-config.toml")
if "XDG_STATE_HOME" not in os.environ:
    # Made once per run (xdist's workers inherit it) and removed when this process exits.
    _STATE_HOME = tempfile.mkdtemp(prefix="batchdash-test-state-")
    os.environ["XDG_STATE_HOME"] = _STATE_HOME
    atexit.register(shutil.rmtree, _STATE_HOME, True)


#: Tests of a minute or so under the suite's load: started first, so that the
#: work-stealing workers fit the rest around them instead of one starting last.
SLOW_TESTS = frozenset({"test_a_20000_request_batch_is_ingested_in_flat_memory"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the slowest tests to the front of the run (a stable sort keeps the rest)."""
    items.sort(key=lambda item: item.name not in SLOW_TESTS)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the whole run (see tests/pgserver.py).

    Without server binaries the PostgreSQL tests are skipped with the reason, except under
    CI=true, where a missing PostgreSQL is a failure (CI installs it).
    """
    try:
        server = PgServer.start()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> str:
    """The name of a database migrated once, which every test's database is copied from."""
    from batchdash.core.db import open_sync_store
    from batchdash.core.db.location import parse_location

    url = pg_server.create_database()
    open_sync_store(parse_location(url)).close()
    return dbname(url)


@pytest.fixture
def pg_url(pg_server: PgServer, pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (dropped afterwards)."""
    url = pg_server.create_database(template=pg_template)
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database path inside the test's temp dir."""
    return tmp_path / "batchdash.db"


@pytest.fixture
def stop_workers(db_path: Path) -> Iterator[None]:
    """Detached workers (`workers start`) outlive a failed test unless stopped here."""
    try:
        yield
    finally:
        cli("workers", "stop", "--db", str(db_path), check=False)


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for CLI subprocesses: the installed package, no inherited DB or key."""
    inherited = ("BATCHDASH_DB", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(extra)
    return env


def cli(
    *args: str, check: bool = True, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `batchdash ARGS` as a real process and return its result."""
    proc = subprocess.run(
        [sys.executable, "-m", "batchdash", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"batchdash {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    """Start `batchdash ARGS` in the background (caller stops it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchdash", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(**env),
        cwd=ROOT,
    )


def wait_until(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `predicate` until it is truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if not predicate():
        raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The `--db` value of a fresh database on each back end: a SQLite file path, or the URL
    of a fresh migrated PostgreSQL database (which needs the `pg_server` of the run).

    Detached workers a failed test leaves behind (PID files left) are stopped afterwards, as
    `stop_workers` does for `db_path`.
    """
    if request.param == "sqlite":
        value = str(tmp_path / "batchdash.db")
    else:
        value = request.getfixturevalue("pg_url")
    try:
        yield value
    finally:
        from batchdash.core.db.location import parse_location
        from batchdash.core.worker import pid_dir

        if any(pid_dir(parse_location(value)).glob("*.pid")):
            cli("workers", "stop", "--db", value, check=False)


def is_postgres(db: str | Path) -> bool:
    """True when the `--db` value `db` names a PostgreSQL server."""
    from batchdash.core.db.location import parse_location

    return parse_location(str(db)).is_postgres


def open_db(db: str | Path) -> SyncStore:
    """A sync store on the database `db` names (a `--db` value: file path or URL)."""
    from batchdash.core.db import open_sync_store
    from batchdash.core.db.location import parse_location

    return open_sync_store(parse_location(str(db)))


async def open_db_async(db: str | Path) -> Store:
    """An async store on the database `db` names (a `--db` value: file path or URL)."""
    from batchdash.core.db import open_store
    from batchdash.core.db.location import parse_location

    return await open_store(parse_location(str(db)))
