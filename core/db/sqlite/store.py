"""The SQLite store front ends: `SyncStore` and async `Store`."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

from batchdash.core.db.sqlite.connection import (
    BUSY_RETRY_SECONDS,
    T,
    _backoff,
    _check_version,
    _checkpoint,
    _configure,
    _is_busy,
    _migrate,
    _not_a_database,
    _set_autocheckpoint,
    _transaction,
    _with_busy_retry_sync,
    connect_sync,
)


class SyncStore:
    """Synchronous access to the store, for the `--once` path, the CLI and tests."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> SyncStore:
        """Open (and migrate, unless read-only) the database at `path`.

        `create=False` refuses a missing file (MissingDatabaseError) instead of making one;
        a file that is not a batchdash database is a one-line StoreError, not a traceback.
        """
        with _not_a_database(path):
            conn = connect_sync(path, readonly=readonly, create=create)
            try:
                if readonly:
                    _check_version(conn)
                else:
                    _migrate(conn)
            except BaseException:
                conn.close()
                raise
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        return _with_busy_retry_sync(lambda: _transaction(self.conn, fn))

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read function on this connection."""
        return fn(self.conn)


class _Checkpointer:
    """Checkpoints the WAL on its own connection and thread while bulk writes go on.

    A passive checkpoint never blocks the writer, but the WAL only starts over from its
    beginning when a write begins with every frame copied; so every RESTART_EVERY writes,
    the next one waits for the checkpoint to catch up, which keeps the WAL short. At most
    one checkpoint runs at a time (they share the connection).
    """

    RESTART_EVERY = 4

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._running: asyncio.Future[None] | None = None  # the checkpoint in progress
        self._writes = 0

    def _start(self) -> None:
        import asyncio

        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(_checkpoint, self._conn))

    async def _wait(self) -> None:
        running = self._running
        if running is not None:
            await running

    def after_write(self) -> None:
        """Start a checkpoint of what was just committed, unless one is running."""
        self._writes += 1
        self._start()

    async def before_write(self) -> None:
        """Every RESTART_EVERY writes, let the checkpoint catch up before the next one."""
        if self._writes and self._writes % self.RESTART_EVERY == 0:
            await self._wait()
            self._start()
            await self._wait()

    async def close(self) -> None:
        """Wait for the checkpoint in progress (it uses the connection), then close."""
        try:
            await self._wait()
        finally:
            self._conn.close()


class Store:
    """Async access through one long-lived aiosqlite connection."""

    def __init__(self, conn: Any, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._checkpointer: _Checkpointer | None = None

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False, create: bool = True) -> Store:
        """Open (and migrate, unless read-only) the database at `path` (see SyncStore.open)."""
        import aiosqlite

        # Check and migrate on a short-lived sync connection; cheap and keeps one code path.
        SyncStore.open(path, readonly=readonly, create=create).close()
        if readonly or not create:
            target = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
            uri = True
        else:
            target = str(path)
            uri = False
        conn = await aiosqlite.connect(target, uri=uri, isolation_level=None)
        store = cls(conn, path)
        await store._call(
            lambda c: _with_busy_retry_sync(partial(_configure, c, readonly=readonly))
        )
        return store

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite's `_execute` runs a callable on its connection thread; using it keeps a
        # whole transaction to one thread hop (pinned aiosqlite range in pyproject.toml).
        def run() -> T:
            return fn(self._conn._conn)

        result: T = await self._conn._execute(run)
        return result

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` as one write transaction, retrying with jitter while the DB is busy."""
        import asyncio  # here, not at the top: `--once` never needs the event loop

        checkpointer = self._checkpointer
        if checkpointer is not None:
            await checkpointer.before_write()
        deadline = time.monotonic() + BUSY_RETRY_SECONDS
        attempt = 0
        while True:
            try:
                result = await self._call(lambda c: _transaction(c, fn))
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
            else:
                if checkpointer is not None:
                    checkpointer.after_write()
                return result

    @contextlib.asynccontextmanager
    async def bulk_writes(self) -> AsyncIterator[None]:
        """Inside, the WAL is checkpointed on another thread instead of in the commits.

        A commit that takes the WAL past 1000 pages copies it back into the database and
        syncs twice, on the writing thread. During bulk writes a second connection does
        that after each write, overlapping the next transaction (see `_Checkpointer`).
        """
        if self._checkpointer is not None:  # nested: the outer one is already doing it
            yield
            return
        checkpointer = _Checkpointer(connect_sync(self.path))
        pages = await self._call(partial(_set_autocheckpoint, pages=0))
        self._checkpointer = checkpointer
        try:
            yield
        finally:
            self._checkpointer = None
            await self._call(partial(_set_autocheckpoint, pages=pages))
            await checkpointer.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read function on the connection thread."""
        return await self._call(fn)
