"""Opening the SQLite file: private creation, pragmas, migrations, and the one busy-retry loop."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from functools import cache, partial
from pathlib import Path
from typing import TypeVar

from batchdash.core.db.busy import retry_while_busy
from batchdash.core.errors import DatabaseError, MissingDatabaseError, StoreError

T = TypeVar("T")


#: Milliseconds SQLite itself waits on a lock before reporting SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000


def require_database(path: Path) -> None:
    """Raise MissingDatabaseError unless `path` exists (read paths never create one)."""
    if not path.exists():
        raise MissingDatabaseError(path)


def _create_private(path: Path) -> None:
    """Create an empty DB file readable only by its owner (WAL/SHM files inherit this)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def connect_sync(path: Path, *, readonly: bool = False, create: bool = True) -> sqlite3.Connection:
    """Open `path` with batchdash's pragmas; autocommit mode (we issue BEGIN ourselves).

    Only `create=True` (and not read-only) makes the file and its directories; otherwise a
    missing database is a MissingDatabaseError, never an empty new one.
    """
    if readonly or not create:
        require_database(path)
        # The URI mode keeps SQLite itself from creating the file if it vanished meanwhile.
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        _create_private(path)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    # Switching a new file to WAL needs a lock another process may hold for a moment (two
    # workers started together both create the database); SQLite may refuse at once.
    try:
        with_busy_retry(partial(configure, conn, readonly=readonly))
    except BaseException:
        conn.close()
        raise
    return conn


def configure(conn: sqlite3.Connection, *, readonly: bool) -> None:
    """Apply pragmas; WAL lets readers (the dashboard) run beside writers (workers)."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION, each step in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is newer than this batchdash (v{SCHEMA_VERSION}); "
            "upgrade batchdash"
        )
    for number in range(version, SCHEMA_VERSION):
        script = _migrations()[number]
        with_busy_retry(partial(_apply_migration, conn, number + 1, script))


def _apply_migration(conn: sqlite3.Connection, version: int, script: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
            conn.execute("ROLLBACK")
            return
        for statement in _split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def with_busy_retry(fn: Callable[[], T]) -> T:
    """Run `fn`, again after a jittered pause while SQLite reports busy (up to
    BUSY_RETRY_SECONDS): the one retry loop of every write, sync or async."""
    return retry_while_busy(fn, _is_busy)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` inside BEGIN IMMEDIATE … COMMIT (rolled back on any error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return result


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is still open: SQLite has already rolled back after some errors
    (SQLITE_FULL, SQLITE_IOERR), and a second ROLLBACK would hide the real error behind
    "cannot rollback - no transaction is active"."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextlib.contextmanager
def database_errors(path: Path) -> Iterator[None]:
    """Report any SQLite failure as a DatabaseError naming the file (callers never see sqlite3)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(f"database {path}: {exc}") from exc


@contextlib.contextmanager
def not_a_database(path: Path) -> Iterator[None]:
    """Turn SQLite's "file is not a database" (and kin) into a StoreError naming the file.

    Busy and locked errors stay what they are: callers retry those.
    """
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            raise
        raise StoreError(f"database {path}: {exc}") from exc


def check_version(conn: sqlite3.Connection) -> None:
    """Refuse (StoreError) a schema this batchdash cannot read without migrating it."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema v{version} is newer than this batchdash")
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is older than this batchdash; run `batchdash init`"
        )


#: The schema version: the number of scripts in `migrations/`. A literal, so opening a
#: database to read (`--once`) never lists the package's files (importlib.resources costs
#: ~8 ms of imports); a new migration adds one here, and `_migrations()` and a unit test
#: refuse a count that disagrees.
SCHEMA_VERSION = 20


@cache
def _migrations() -> list[str]:
    """The numbered migration scripts shipped in `migrations/`, in order (new ones are new
    files, never edits); loaded on the first migration only."""
    from importlib import resources

    folder = resources.files(__package__).joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    if len(names) != SCHEMA_VERSION:
        raise StoreError(f"{len(names)} migration scripts, but SCHEMA_VERSION is {SCHEMA_VERSION}")
    return [folder.joinpath(name).read_text(encoding="utf-8") for name in names]
