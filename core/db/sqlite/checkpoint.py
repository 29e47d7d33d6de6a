"""WAL checkpoints on a second connection and thread, beside bulk writes."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only bulk writes run checkpoints; `--once` never loads asyncio
    import asyncio


def set_autocheckpoint(conn: sqlite3.Connection, pages: int) -> int:
    """Set the WAL size (pages) at which a commit checkpoints (0: never); the old one."""
    old = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
    return old


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds back into the database, waiting for nobody."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class Checkpointer:
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
