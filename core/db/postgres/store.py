"""The PostgreSQL store: `PgSyncStore` and async `PgStore`, each handing out one `PgTx`.

Like the SQLite store, `PgStore` owns one thread holding one (synchronous psycopg)
connection, and runs each whole read or write callable there in one hop, so repositories
are the same plain synchronous code on both back ends. Every write transaction ends with
`pg_notify` on the `batchdash` channel, so idle workers and dashboards on any host can
wake at once instead of at their next poll (polling stays the fallback).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.db.location import DbLocation
from batchdash.core.db.ports import Tx
from batchdash.core.db.postgres.batches import PgBatches
from batchdash.core.db.postgres.connection import (
    CHANNEL,
    check_version,
    connect,
    database_errors,
    migrate,
    schema_version,
    with_busy_retry,
)
from batchdash.core.db.postgres.events import PgEvents
from batchdash.core.db.postgres.items import PgBatchItems
from batchdash.core.db.postgres.jobs import PgJobs
from batchdash.core.db.postgres.listen import WORK_CHANNEL, Listener
from batchdash.core.db.postgres.qa import PgQA
from batchdash.core.db.postgres.queues import PgQueues
from batchdash.core.db.postgres.stats import PgStats
from batchdash.core.db.postgres.workers import PgWorkers
from batchdash.core.errors import MissingDatabaseError

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class PgTx:
    """Every repository on one connection; what `read` and `write` hand to their callable."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.jobs = PgJobs(conn)
        self.queues = PgQueues(conn)
        self.events = PgEvents(conn)
        self.workers = PgWorkers(conn)
        self.batches = PgBatches(conn)
        self.items = PgBatchItems(conn)
        self.qa = PgQA(conn)
        self.stats = PgStats(conn)


def _open_checked(where: DbLocation, *, readonly: bool, create: bool) -> psycopg.Connection[Any]:
    """A connection to a database at the current schema (migrated unless read-only).

    The server's database itself must exist (batchdash never creates one); `create=False`
    also refuses one that batchdash never migrated (MissingDatabaseError), as a missing
    SQLite file is refused.
    """
    conn = connect(where, readonly=readonly)
    try:
        with database_errors(where):
            if readonly:
                check_version(conn, where)
                return conn
            if not create and schema_version(conn) is None:
                raise MissingDatabaseError(where.display)
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _write(conn: psycopg.Connection[Any], tx: Tx, fn: Callable[[Tx], T]) -> T:
    """One write transaction that notifies listeners, retried while the server says busy."""

    def attempt() -> T:
        with conn.transaction():
            result = fn(tx)
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        return result

    return with_busy_retry(attempt)


def _read(conn: psycopg.Connection[Any], tx: Tx, fn: Callable[[Tx], T]) -> T:
    """One read in a single snapshot, so every figure of a picture is of the same moment.

    JIT compilation is off for it: the planner turns it on for any statement whose estimate
    passes `jit_above_cost`, and compiling took 26 ms of the sparkline read's 30 at 10M jobs
    (a generic estimate for its index ranges), where the read itself takes 2-4 ms.
    """
    with conn.transaction():
        conn.execute(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off"
        )
        return fn(tx)


def _wal_position(conn: psycopg.Connection[Any]) -> str | None:
    """`pg_current_wal_insert_lsn()` as text, or None where the server refuses it."""
    import psycopg

    try:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn").fetchone()
    except psycopg.Error:  # a standby in recovery: the caller refreshes every time
        return None
    return None if row is None else str(row["lsn"])


class PgSyncStore:
    """Synchronous access, for the `--once` path, the CLI and tests."""

    def __init__(self, conn: psycopg.Connection[Any], location: DbLocation) -> None:
        self.conn = conn
        self.location = location
        self.tx: Tx = PgTx(conn)

    @classmethod
    def open(cls, where: DbLocation, *, readonly: bool = False, create: bool = True) -> PgSyncStore:
        """Open (and migrate, unless read-only) the database at `where`."""
        return cls(_open_checked(where, readonly=readonly, create=create), where)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> PgSyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction (retried on serialization failures)."""
        with database_errors(self.location):
            return _write(self.conn, self.tx, fn)

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function in one consistent snapshot."""
        with database_errors(self.location):
            return _read(self.conn, self.tx, fn)

    def interrupt(self) -> None:
        """Cancel the statement running on another thread; its transaction rolls back."""
        self.conn.cancel_safe()


class PgStore:
    """Async access through one long-lived connection on the store's own thread."""

    def __init__(
        self, conn: psycopg.Connection[Any], location: DbLocation, thread: ThreadPoolExecutor
    ) -> None:
        self._conn = conn
        self._tx: Tx = PgTx(conn)
        self._thread = thread
        self.location = location
        self._listener = Listener(location, conn.info.backend_pid)

    @classmethod
    async def open(
        cls, where: DbLocation, *, readonly: bool = False, create: bool = True
    ) -> PgStore:
        """Open (and migrate, unless read-only) the database at `where`."""
        import asyncio

        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchdash-db")
        opening = partial(_open_checked, where, readonly=readonly, create=create)
        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, opening)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(conn, where, thread)

    async def close(self) -> None:
        """Close the connections and stop the store's thread."""
        await self._listener.close()
        try:
            await self._call(lambda conn: conn.close())
        finally:
            self._thread.shutdown(wait=False)

    async def __aenter__(self) -> PgStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        import asyncio

        def run() -> T:
            with database_errors(self.location):
                return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction (retried on serialization failures)."""
        return await self._call(lambda conn: _write(conn, self._tx, fn))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function in one consistent snapshot, on the store's thread."""
        return await self._call(lambda conn: _read(conn, self._tx, fn))

    async def wait_for_work(self, timeout: float) -> bool:
        """Wake when another process makes a job claimable (a NOTIFY from the jobs trigger)."""
        return await self._listener.wait(WORK_CHANNEL, timeout)

    async def wait_for_change(self, timeout: float) -> bool:
        """Wake when another process commits a write (every write transaction notifies)."""
        return await self._listener.wait(CHANNEL, timeout)

    async def change_token(self) -> object:
        """The server's WAL insert position: every committed write moves it (so do other
        databases' writes and maintenance, which only costs a refresh). None on a standby,
        which has no insert position of its own."""
        return await self._call(_wal_position)

    @contextlib.asynccontextmanager
    async def bulk_writes(self) -> AsyncIterator[None]:
        """Nothing to arrange: the server checkpoints on its own (SQLite's WAL needs help)."""
        yield
