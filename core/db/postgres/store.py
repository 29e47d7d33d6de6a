"""The PostgreSQL store: `PgSyncStore` and async `PgStore`, each handing out one `PgTx`.

Like the SQLite store, `PgStore` owns one thread holding one (synchronous psycopg)
connection, and runs each whole read or write callable there in one hop, so repositories
are the same plain synchronous code on both back ends. Writes notify the `batchdash`
channel, so dashboards on any host refresh at once instead of at their next poll (polling
stays the fallback); idle workers wake on the jobs trigger's `batchdash_work` instead.

An async store notifies at most once per `CHANGE_NOTIFY_GAP`: the first write of a burst
notifies in its own transaction, later ones within the gap leave one trailing notification
that follows the gap. A notification takes a server-wide lock at commit, and busy workers
commit hundreds of times a second; dashboards coalesce a burst into one refresh anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.db.location import DbLocation
from batchdash.core.db.ports import Tx
from batchdash.core.db.postgres.connection import (
    CHANNEL,
    check_version,
    connect,
    database_errors,
    migrate,
    schema_version,
    with_busy_retry,
)
from batchdash.core.db.postgres.tx import PgTx
from batchdash.core.errors import MissingDatabaseError

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import psycopg


T = TypeVar("T")


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


#: Seconds between an async store's change notifications (dashboards wait 0.3 s or more
#: after one before refreshing, so a burst still ends in a refresh that shows all of it).
CHANGE_NOTIFY_GAP = 0.1

_NOTIFY_SQL = "SELECT pg_notify(%s, '')"


def _write(
    conn: psycopg.Connection[Any], tx: Tx, fn: Callable[[Tx], T], *, notify: bool = True
) -> T:
    """One write transaction (notifying listeners unless told not to), retried while the
    server says busy."""

    def attempt() -> T:
        with conn.transaction():
            result = fn(tx)
            if notify:
                conn.execute(_NOTIFY_SQL, (CHANNEL,))
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
        from batchdash.core.db.postgres.listen import Listener  # async stores only

        self._listener = Listener(location, conn.info.backend_pid)
        self._notified_at = -CHANGE_NOTIFY_GAP  # monotonic time of the last notification
        self._trailing: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, where: DbLocation, *, readonly: bool = False, create: bool = True
    ) -> PgStore:
        """Open (and migrate, unless read-only) the database at `where`."""
        import asyncio  # here, not at the top: `--once` reads through the sync store
        from concurrent.futures import ThreadPoolExecutor

        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchdash-db")
        opening = partial(_open_checked, where, readonly=readonly, create=create)
        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, opening)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(conn, where, thread)

    async def close(self) -> None:
        """Close the connections and stop the store's thread (a trailing notification
        owed is sent first, so the last writes of a burst still wake dashboards)."""
        if self._trailing is not None:
            with contextlib.suppress(Exception):
                await self._trailing
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
        now = time.monotonic()
        notify = now - self._notified_at >= CHANGE_NOTIFY_GAP
        if notify:
            self._notified_at = now
        try:
            return await self._call(lambda conn: _write(conn, self._tx, fn, notify=notify))
        finally:
            if not notify and self._trailing is None:
                import asyncio

                self._trailing = asyncio.create_task(self._notify_after_gap())

    async def _notify_after_gap(self) -> None:
        """The trailing notification of a burst, one gap after the last one sent."""
        import asyncio

        await asyncio.sleep(max(0.0, self._notified_at + CHANGE_NOTIFY_GAP - time.monotonic()))
        self._notified_at = time.monotonic()
        self._trailing = None
        # A lost notification only delays dashboards to their next poll: never an error here.
        with contextlib.suppress(Exception):
            await self._call(lambda conn: conn.execute(_NOTIFY_SQL, (CHANNEL,)))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function in one consistent snapshot, on the store's thread."""
        return await self._call(lambda conn: _read(conn, self._tx, fn))

    async def wait_for_work(self, timeout: float) -> bool:
        """Wake when another process makes a job claimable (a NOTIFY from the jobs trigger)."""
        from batchdash.core.db.postgres.listen import WORK_CHANNEL

        return await self._listener.wait(WORK_CHANNEL, timeout)

    async def wait_for_change(self, timeout: float) -> bool:
        """Wake when another process commits a write (a burst of writes wakes it at least
        once per `CHANGE_NOTIFY_GAP`, and after the last of them)."""
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
