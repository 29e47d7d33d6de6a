"""The SQLite store: `SqliteSyncStore` and async `SqliteStore`, each handing out one `SqliteTx`.

`SqliteStore` owns its database thread: one single-thread executor holds the connection, and
`read`/`write` run the whole callable there in one hop, so a transaction never interleaves
with other coroutines and costs one thread switch instead of one per statement. Busy retries
run there too, in the one loop of `connection.with_busy_retry`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from batchdash.core.db.location import DbLocation
from batchdash.core.db.ports import Tx
from batchdash.core.db.sqlite.checkpoint import Checkpointer, set_autocheckpoint
from batchdash.core.db.sqlite.connection import (
    T,
    check_version,
    connect_sync,
    database_errors,
    migrate,
    not_a_database,
    transaction,
    with_busy_retry,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from batchdash.core.db.sqlite.batches import SqliteBatches
    from batchdash.core.db.sqlite.events import SqliteEvents
    from batchdash.core.db.sqlite.items import SqliteBatchItems
    from batchdash.core.db.sqlite.jobs import SqliteJobs
    from batchdash.core.db.sqlite.limits import SqliteLimits
    from batchdash.core.db.sqlite.notices import SqliteNotices
    from batchdash.core.db.sqlite.qa import SqliteQA
    from batchdash.core.db.sqlite.queues import SqliteQueues
    from batchdash.core.db.sqlite.stages import SqliteStages
    from batchdash.core.db.sqlite.stats import SqliteStats
    from batchdash.core.db.sqlite.workers import SqliteWorkers
    from batchdash.core.db.sqlprune import SqlPrune
    from batchdash.core.db.sqltags import SqlTags


class SqliteTx:
    """Every repository on one connection; what `read` and `write` hand to their callable.

    Each repository (and its module) is made on first use: `--once` reads only some.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @cached_property
    def jobs(self) -> SqliteJobs:
        """The jobs repository."""
        from batchdash.core.db.sqlite.jobs import SqliteJobs

        return SqliteJobs(self._conn)

    @cached_property
    def queues(self) -> SqliteQueues:
        """The queues repository."""
        from batchdash.core.db.sqlite.queues import SqliteQueues

        return SqliteQueues(self._conn)

    @cached_property
    def events(self) -> SqliteEvents:
        """The events repository."""
        from batchdash.core.db.sqlite.events import SqliteEvents

        return SqliteEvents(self._conn)

    @cached_property
    def workers(self) -> SqliteWorkers:
        """The workers repository."""
        from batchdash.core.db.sqlite.workers import SqliteWorkers

        return SqliteWorkers(self._conn)

    @cached_property
    def batches(self) -> SqliteBatches:
        """The batches repository."""
        from batchdash.core.db.sqlite.batches import SqliteBatches

        return SqliteBatches(self._conn)

    @cached_property
    def stages(self) -> SqliteStages:
        """The stages repository."""
        from batchdash.core.db.sqlite.stages import SqliteStages

        return SqliteStages(self._conn)

    @cached_property
    def items(self) -> SqliteBatchItems:
        """The items repository."""
        from batchdash.core.db.sqlite.items import SqliteBatchItems

        return SqliteBatchItems(self._conn)

    @cached_property
    def qa(self) -> SqliteQA:
        """The qa repository."""
        from batchdash.core.db.sqlite.qa import SqliteQA

        return SqliteQA(self._conn)

    @cached_property
    def stats(self) -> SqliteStats:
        """The stats repository."""
        from batchdash.core.db.sqlite.stats import SqliteStats

        return SqliteStats(self._conn)

    @cached_property
    def notices(self) -> SqliteNotices:
        """The notices repository (what each notification channel sent)."""
        from batchdash.core.db.sqlite.notices import SqliteNotices

        return SqliteNotices(self._conn)

    @cached_property
    def tags(self) -> SqlTags:
        """The tags repository (shared SQL, `core/db/sqltags.py`)."""
        from batchdash.core.db.sqlshared import same_sql
        from batchdash.core.db.sqltags import SqlTags

        return SqlTags(self._conn, same_sql)

    @cached_property
    def prune(self) -> SqlPrune:
        """The pruning repository (shared SQL, `core/db/sqlprune.py`)."""
        from batchdash.core.db.sqlprune import SqlPrune
        from batchdash.core.db.sqlshared import same_sql

        return SqlPrune(self._conn, same_sql, walk="jobs j NOT INDEXED")

    @cached_property
    def limits(self) -> SqliteLimits:
        """The rate-limits repository."""
        from batchdash.core.db.sqlite.limits import SqliteLimits

        return SqliteLimits(self._conn)


def _open_checked(path: Path, *, readonly: bool, create: bool) -> sqlite3.Connection:
    """A configured connection to a database at the current schema (migrated unless read-only).

    `create=False` refuses a missing file (MissingDatabaseError) instead of making one;
    a file that is not a batchdash database is a one-line StoreError, not a traceback.
    """
    with database_errors(path), not_a_database(path):
        conn = connect_sync(path, readonly=readonly, create=create)
        try:
            if readonly:
                check_version(conn)
            else:
                migrate(conn)
        except BaseException:
            conn.close()
            raise
    return conn


class SqliteSyncStore:
    """Synchronous access to the store, for the `--once` path, the CLI and tests."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.location = DbLocation(path=path)
        #: Repositories outside any transaction, for tests and tools (each write commits
        #: alone, and errors are SQLite's own): everything else goes through read/write.
        self.tx: Tx = SqliteTx(conn)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> SqliteSyncStore:
        """Open (and migrate, unless read-only) the database at `path`."""
        return cls(_open_checked(path, readonly=readonly, create=create), path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> SqliteSyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        with database_errors(self.path):
            return with_busy_retry(lambda: transaction(self.conn, lambda _: fn(self.tx)))

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function on this connection."""
        with database_errors(self.path):
            return fn(self.tx)

    def interrupt(self) -> None:
        """Abort the statement running on another thread; its transaction rolls back."""
        self.conn.interrupt()


class SqliteStore:
    """Async access through one long-lived connection on the store's own thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, thread: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._tx = SqliteTx(conn)
        self._thread = thread
        self.path = path
        self.location = DbLocation(path=path)
        self._checkpointer: Checkpointer | None = None

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> SqliteStore:
        """Open (and migrate, unless read-only) the database at `path` (see SqliteSyncStore)."""
        # Imported here: the sync readers (`--once`) need no thread (~6 ms of imports).
        from concurrent.futures import ThreadPoolExecutor

        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchdash-db")
        opening = partial(_open_checked, path, readonly=readonly, create=create)
        try:
            import asyncio  # here: the sync readers never need an event loop

            conn = await asyncio.get_running_loop().run_in_executor(thread, opening)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(conn, path, thread)

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        try:
            await self._call(lambda conn: conn.close())
        finally:
            self._thread.shutdown(wait=False)

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with database_errors(self.path):
                return fn(self._conn)

        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        checkpointer = self._checkpointer
        if checkpointer is not None:
            await checkpointer.before_write()

        def run(conn: sqlite3.Connection) -> T:
            return with_busy_retry(lambda: transaction(conn, lambda _: fn(self._tx)))

        result = await self._call(run)
        if checkpointer is not None:
            checkpointer.after_write()
        return result

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run a read function on the store's thread."""
        return await self._call(lambda _: fn(self._tx))

    async def wait_for_work(self, timeout: float) -> bool:
        """SQLite has no notifications: wait out the timeout (callers poll)."""
        return await self.wait_for_change(timeout)

    async def wait_for_change(self, timeout: float) -> bool:
        """SQLite has no notifications: wait out the timeout (callers poll)."""
        import asyncio

        await asyncio.sleep(timeout)
        return False

    async def change_token(self) -> object:
        """SQLite's data_version (it moves when another connection commits) with this
        connection's own count of changed rows: one pragma, no table read."""
        return await self._call(
            lambda conn: (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        )

    @contextlib.asynccontextmanager
    async def bulk_writes(self) -> AsyncIterator[None]:
        """Inside, the WAL is checkpointed on another thread instead of in the commits.

        A commit that takes the WAL past 1000 pages copies it back into the database and
        syncs twice, on the writing thread. During bulk writes a second connection does
        that after each write, overlapping the next transaction (see `Checkpointer`).
        """
        if self._checkpointer is not None:  # nested: the outer one is already doing it
            yield
            return
        checkpointer = Checkpointer(connect_sync(self.path))
        pages = await self._call(partial(set_autocheckpoint, pages=0))
        self._checkpointer = checkpointer
        try:
            yield
        finally:
            self._checkpointer = None
            await self._call(partial(set_autocheckpoint, pages=pages))
            await checkpointer.close()
