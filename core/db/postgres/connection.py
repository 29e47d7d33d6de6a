"""Connecting to PostgreSQL: one-line errors, migrations under an advisory lock, busy retries.

psycopg is imported here and only when a `postgresql://` database is opened, so SQLite users
never need it. Connections run in autocommit mode and open transactions themselves; rows come
back as dicts, which the shared row mappers (`core/db/sqlshared.py`) read like SQLite's rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.db.busy import retry_while_busy
from batchdash.core.db.location import DbLocation
from batchdash.core.errors import DatabaseError, MissingDatabaseError, StoreError

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

#: Advisory lock keys (one namespace: batchdash's first four bytes as an int, then a
#: number per use), so other applications' advisory locks on the server never collide.
LOCK_MIGRATE = (0x62617463, 1)
#: Taken by the one process rescuing expired leases (see PgJobs.rescue).
LOCK_RESCUE = (0x62617463, 2)

#: The channel writes notify (see `PgStore.write`: a burst of them, once per 0.1 s).
CHANNEL = "batchdash"

#: SQLSTATEs after which the whole transaction can simply run again.
_TRANSIENT = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def _psycopg() -> Any:
    """The psycopg module, or a one-line StoreError naming the extra to install."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError("PostgreSQL needs psycopg: pip install 'batchdash[postgres]'") from exc
    return psycopg


def connect(where: DbLocation, *, readonly: bool = False) -> psycopg.Connection[Any]:
    """A new autocommit connection whose rows are dicts (read-only ones refuse writes)."""
    driver = _psycopg()
    from psycopg.rows import dict_row

    options = "-c default_transaction_read_only=on" if readonly else ""
    with database_errors(where):
        conn: psycopg.Connection[Any] = driver.connect(
            where.setting,
            autocommit=True,
            row_factory=dict_row,
            application_name="batchdash",
            options=options,
            connect_timeout=10,
        )
    return conn


#: The uniqueness of a queue's keys (migration 0014). Writers skip the keys they find
#: there, so it fails only when another transaction committed the same new key meanwhile;
#: run again, the writer finds that key and skips it, as if it had been there first.
_KEY_RACE = ("23505", "job_search_queue_key")  # unique_violation


def is_busy(exc: BaseException) -> bool:
    """True for errors after which the rolled-back transaction may simply run again."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _TRANSIENT:
        return True
    diag = getattr(exc, "diag", None)
    return (sqlstate, getattr(diag, "constraint_name", None)) == _KEY_RACE


def with_busy_retry(fn: Callable[[], T]) -> T:
    """Run `fn` again while PostgreSQL reports a serialization failure or a deadlock."""
    return retry_while_busy(fn, is_busy)


@contextlib.contextmanager
def database_errors(where: DbLocation) -> Iterator[None]:
    """Report any psycopg failure as a one-line DatabaseError naming the (redacted) URL."""
    driver = _psycopg()
    try:
        yield
    except driver.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(f"database {where.display}: {first_line}") from exc


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version stored in the database, None when batchdash never migrated it."""
    exists = conn.execute("SELECT to_regclass('batchdash_schema') IS NOT NULL AS e").fetchone()
    if not exists or not exists["e"]:
        return None
    row = conn.execute("SELECT version FROM batchdash_schema").fetchone()
    return int(row["version"]) if row else 0


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Bring the schema up to SCHEMA_VERSION, each step one transaction under an advisory
    lock, so several hosts may run `init` (or start workers) at the same moment.

    An up-to-date schema is one unlocked read: every command opens its store this way, and
    each step's version is committed with the step, so the current version means all done.
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return
    for number in range(SCHEMA_VERSION):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK_MIGRATE)
            conn.execute("CREATE TABLE IF NOT EXISTS batchdash_schema (version integer NOT NULL)")
            conn.execute(
                "INSERT INTO batchdash_schema (version) "
                "SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM batchdash_schema)"
            )
            version = schema_version(conn) or 0
            if version > SCHEMA_VERSION:
                raise _newer(version)
            if version > number:  # done already (by us earlier, or by another host)
                continue
            conn.execute(_migration(number))
            conn.execute("UPDATE batchdash_schema SET version = %s", (number + 1,))


def check_version(conn: psycopg.Connection[Any], where: DbLocation) -> None:
    """Refuse a database this batchdash cannot read without migrating it."""
    version = schema_version(conn)
    if version is None:
        raise MissingDatabaseError(where.display)
    if version > SCHEMA_VERSION:
        raise _newer(version)
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is older than this batchdash; run `batchdash init`"
        )


def _newer(version: int) -> StoreError:
    return StoreError(
        f"database schema v{version} is newer than this batchdash (v{SCHEMA_VERSION}); "
        "upgrade batchdash"
    )


#: The numbered migration scripts shipped beside this module (package data).
_FOLDER = os.path.join(os.path.dirname(__file__), "migrations")
_NAMES = sorted(name for name in os.listdir(_FOLDER) if name.endswith(".sql"))


def _migration(number: int) -> str:
    """The text of migration `number` (0-based), read only when a database needs it: a
    read-only open (`--once`) just counts the files."""
    with open(os.path.join(_FOLDER, _NAMES[number]), encoding="utf-8") as script:
        return script.read()


#: One schema version per script (their own list: PostgreSQL's schema started in the final
#: shape of SQLite's twelve); new ones are new files, never edits.
SCHEMA_VERSION = len(_NAMES)
