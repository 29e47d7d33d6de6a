"""A watchdog thread for a worker whose event loop a handler blocks (a sync `time.sleep`).

Handlers must be async (or push blocking work to `asyncio.to_thread`); one that blocks the
loop stops everything on it: heartbeats, other jobs, signal handling. Without cover its
leases expire, other workers rescue its jobs and run them a second time, and
`workers stop` times out. The watch sees the loop stop ticking and then, from its own
thread and its own database connection:

* keeps heartbeating, so the leases of the jobs in flight stay alive (no double run),
* writes a note on the worker row ("loop blocked 12s by job 42") that the dashboard and
  `workers list` show, and logs it,
* honours a stop request once its grace period is over (or at a second signal): records
  the outcomes already finished, releases the jobs in flight back to pending like a drain
  past its grace, marks the worker stopped and ends the process.

The loop's own next heartbeat clears the note.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from batchdash.core.db import open_sync_store
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.errors import StoreError
from batchdash.core.models import WorkerState

if TYPE_CHECKING:
    from batchdash.core.worker import WorkerProcess

log = logging.getLogger("batchdash.worker")

WriteFn = Callable[[Tx], None]

#: A stop request is honoured over a blocked loop only after the loop has been blocked at
#: least this long, so a loop merely starved of CPU for a moment still drains itself.
MIN_BLOCK_TO_ABANDON = 1.0


class LoopWatch(threading.Thread):
    """Watches one worker's event loop; see the module docstring."""

    def __init__(self, worker: WorkerProcess, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="batchdash-loop-watch", daemon=True)
        self.worker = worker
        self.loop = loop
        self.threshold = worker.options.heartbeat  # late by a whole beat: blocked
        self.period = worker.options.heartbeat / 4
        self.tick = time.monotonic()
        self.blocked_since: float | None = None
        self.last_beat = 0.0
        self._done = threading.Event()
        self._db: SyncStore | None = None

    def start(self) -> None:
        """Start watching; the loop counts as alive from now."""
        self.tick = time.monotonic()
        super().start()

    async def ticker(self) -> None:
        """The loop's sign of life, every `period` seconds (run as a task on the loop)."""
        while True:
            self.tick = time.monotonic()
            await asyncio.sleep(self.period)

    def stop(self) -> None:
        """End the thread (the worker is shutting down normally)."""
        self._done.set()
        self.join(timeout=5)

    def run(self) -> None:
        """Check the loop every `period` seconds until stopped."""
        try:
            while not self._done.wait(self.period):
                self._check(time.monotonic())
        finally:
            if self._db is not None:
                self._db.close()

    def _check(self, now: float) -> None:
        if now - self.tick < self.threshold:
            if self.blocked_since is not None:
                log.warning("event loop running again after %.1fs", now - self.blocked_since)
                self.blocked_since = None
            return
        blocked_for = now - self.tick
        job = self._blocking_job()
        note = f"loop blocked {blocked_for:.0f}s by {job}"
        if self.blocked_since is None:
            self.blocked_since = self.tick
            log.warning(
                "event loop blocked for %.1fs by %s: handlers must be async or use "
                "asyncio.to_thread; heartbeats go on from a thread",
                blocked_for,
                job,
            )
        if blocked_for >= MIN_BLOCK_TO_ABANDON and self.worker.stop_overdue(now):
            self._abandon(note)
        elif now - self.last_beat >= self.worker.options.heartbeat:
            self.last_beat = now
            self._write(self._beat(note))

    def _blocking_job(self) -> str:
        """`job 42 (key)` for the job whose handler holds the loop, as far as can be told."""
        task = asyncio.current_task(self.loop)
        name = task.get_name() if task is not None else ""
        if not name.startswith("job-"):
            return "the worker itself"
        job_id = int(name.removeprefix("job-"))
        entry = self.worker.inflight.get(job_id)
        return f"job {job_id} ({entry[0].key})" if entry else f"job {job_id}"

    def _held(self) -> list[tuple[int, str]]:
        # The loop is blocked, so the dict is not changing under us; copy it at once anyway.
        return [(job_id, claim.token) for job_id, (claim, _) in list(self.worker.inflight.items())]

    def _beat(self, note: str) -> WriteFn:
        worker = self.worker
        held = self._held()
        state = WorkerState.DRAINING if worker.draining else WorkerState.BUSY

        def run(tx: Tx) -> None:
            now = time.time()
            lease = worker.options.lease_seconds
            tx.workers.heartbeat(worker.id, state, held, worker.done, worker.failed, lease, now)
            tx.workers.set_worker_note(worker.id, note)

        return run

    def _abandon(self, note: str) -> None:
        """Stop over a blocked loop: what a drain past its grace does, then exit."""
        worker = self.worker
        held = self._held()
        outcomes = list(worker.outcomes)

        def run(tx: Tx) -> None:
            now = time.time()
            tx.jobs.finish(worker.id, outcomes)
            tx.workers.release(worker.id, held, now)
            tx.workers.set_worker_state(worker.id, WorkerState.STOPPED, now)
            tx.workers.set_worker_note(worker.id, f"stopped while {note}")

        log.error(
            "stop requested but the %s: released %d jobs to pending; exiting",
            note,
            len(held),
        )
        self._write(run)
        worker.pid_file.unlink(missing_ok=True)
        logging.shutdown()
        os._exit(0)  # the loop cannot run its own shutdown; this is its drain past grace

    def _write(self, fn: WriteFn) -> None:
        try:
            if self._db is None:
                self._db = open_sync_store(self.worker.options.where)
            self._db.write(fn)
        except StoreError as exc:
            log.warning("heartbeat from the watch thread failed: %s", exc)
