"""Live updates: wait for another process's write instead of sleeping out a poll interval.

Writes notify the `batchdash` channel (see `store.py`; a burst once per 0.1 s), and a
statement trigger on jobs notifies `batchdash_work` when claimable work appears (enqueue,
retry, release, rescue, a retry delay). A `Listener` LISTENs on its own async connection and
wakes its one waiter when a notification from ANOTHER connection arrives (the store's own
writes are ignored by their backend pid). It LISTENs only on the channels waited on: a
worker never hears the change notifications of every other worker's commits, which woke
every worker process (and its server backend) on every write (issue 12's throughput).
Where LISTEN cannot work (a transaction-mode pooler such as PgBouncer drops it), waiting
falls back to sleeping the timeout: callers keep polling, only slower to notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from batchdash.core.db.location import DbLocation
from batchdash.core.db.postgres.connection import CHANNEL

if TYPE_CHECKING:
    import psycopg

#: The channel the jobs trigger notifies when work a worker could claim appears.
WORK_CHANNEL = "batchdash_work"

#: The channels one may wait on, as SQL identifiers (LISTEN takes no parameter).
_CHANNELS = {CHANNEL: CHANNEL, WORK_CHANNEL: WORK_CHANNEL}

log = logging.getLogger(__name__)


class Listener:
    """One LISTEN connection, opened on first use, shared by a store's waits."""

    def __init__(self, where: DbLocation, own_pid: int) -> None:
        self._where = where
        self._own_pid = own_pid
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._channels: set[str] = set()
        self._broken = False

    async def wait(self, channel: str, timeout: float) -> bool:
        """True as soon as another connection notifies `channel`; False after `timeout`."""
        deadline = time.monotonic() + timeout
        conn = await self._connection(channel)
        if conn is None:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return False
        try:
            while (left := deadline - time.monotonic()) > 0:
                async for note in conn.notifies(timeout=left, stop_after=1):
                    if note.channel == channel and note.pid != self._own_pid:
                        return True
        except Exception as exc:  # the server went away: fall back to polling
            self._give_up(exc)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        return False

    async def close(self) -> None:
        """Close the LISTEN connection, if one was opened."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _connection(self, channel: str) -> psycopg.AsyncConnection[Any] | None:
        """The LISTEN connection, listening on `channel` (both opened on first use)."""
        if self._broken:
            return None
        try:
            if self._conn is None:
                import psycopg

                self._conn = await psycopg.AsyncConnection.connect(
                    self._where.setting, autocommit=True, application_name="batchdash-listen"
                )
            if channel not in self._channels:
                await self._conn.execute(f"LISTEN {_CHANNELS[channel]}")
                self._channels.add(channel)
        except Exception as exc:
            self._give_up(exc)
            return None
        return self._conn

    def _give_up(self, exc: BaseException) -> None:
        """Stop listening for good and say why once (the redacted URL, never a password)."""
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning(
            "database %s: live updates off, polling instead (%s)", self._where.display, first_line
        )
        self._broken = True
        self._conn = None
