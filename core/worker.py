"""The worker process: N jobs in flight on one asyncio loop, heartbeats, cancels, drain.

One loop iteration is one write transaction that both records the outcomes finished
since the last iteration and claims jobs for the free slots ("group commit"), so a busy
worker pays one transaction for many jobs. A separate heartbeat task extends the leases
of the jobs in flight, learns which of them were cancelled, rescues leases that other
(dead) workers let expire, and marks stale workers.

On SIGTERM/SIGINT, or when a heartbeat reports a stop requested through the database
(`workers stop` from a host that cannot signal it), the worker drains: it stops claiming,
lets in-flight jobs finish within a grace period, then releases what is left back to
pending (the attempt is not counted).
A second signal cuts the grace period short.

The stages and progress handlers report (`job.stage`, `job.progress`) ride along: each
of those transactions first saves what was reported since the last one (`core.stages`).

A job's faults stay with its attempt (`core.attempt`): whatever its handler does fails
that attempt, never the worker or the jobs beside it. The worker logs its life (start,
drain, stop, rescues, failures, retries) to stderr, each line tagged with its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchdash.core import qa, queue
from batchdash.core.attempt import run_attempt
from batchdash.core.db import DbLocation, open_store
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import StoreError
from batchdash.core.files import write_pid_file
from batchdash.core.handlers import SimSettings
from batchdash.core.liveness import STALE_AFTER_INTERVALS, pid_alive, this_host
from batchdash.core.loopwatch import LoopWatch
from batchdash.core.models import (
    ALL_JOBS,
    Claim,
    HeartbeatReply,
    JobStatus,
    Outcome,
    Worker,
    WorkerState,
)
from batchdash.core.stages import StageReport, StageReporter

#: Longest single wait for a work notification (the task loops; it only bounds each wait).
WORK_WAIT_SECONDS = 60.0


@dataclass(slots=True)
class WorkerOptions:
    """Settings of one worker process (the `batchdash worker` flags)."""

    where: DbLocation
    concurrency: int = 4
    queues: tuple[str, ...] = ()
    heartbeat: float = 2.0
    lease: float | None = None
    poll: float = 0.5
    idle_exit: float | None = None
    grace: float = 10.0
    retry: queue.RetryPolicy = field(default_factory=queue.RetryPolicy)
    sim: SimSettings = field(default_factory=SimSettings)
    qa_every: int | None = None
    qa_judges: tuple[str, ...] = ()
    job_timeout: float | None = None
    max_result_chars: int = 10_000_000
    max_error_chars: int = 65_536

    @property
    def lease_seconds(self) -> float:
        """How long a claim stays valid without a heartbeat (default 5 intervals)."""
        return self.lease if self.lease is not None else 5 * self.heartbeat


#: The worker's log; `run_worker` sends it to stderr, each line tagged with the worker id.
log = logging.getLogger("batchdash.worker")


def pid_dir(where: DbLocation) -> Path:
    """Where this host's workers of the database keep their PID files and logs (the
    database's local state folder, for a file and a server alike)."""
    return where.state_dir() / "workers"


def new_worker_id() -> str:
    """host-pid-random: readable in the dashboard and unique across restarts."""
    return f"{this_host()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class WorkerProcess:
    """Runs jobs from the store until told to stop (or idle for `idle_exit` seconds)."""

    def __init__(self, options: WorkerOptions, worker_id: str | None = None) -> None:
        self.options = options
        self.id = worker_id or new_worker_id()
        self.db: Store | None = None
        self.inflight: dict[int, tuple[Claim, asyncio.Task[None]]] = {}
        self.outcomes: list[Outcome] = []
        self.cancel_requested: set[int] = set()
        self.done = 0
        self.failed = 0
        self.draining = False
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # a second stop signal: no more grace
        self._stop_signals = 0
        self._stop_at: float | None = None  # monotonic time of the first stop signal
        self._pid_file = pid_dir(options.where) / f"{self.id}.pid"
        self.qa: qa.WorkerQA | None = None
        #: Stage marks and progress of the jobs in flight, saved by the next transaction.
        self.stages = StageReporter()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        """Run until drained or idle; returns the process exit code."""
        self.db = await open_store(self.options.where)
        if self.options.qa_every:
            judges = self.options.qa_judges or (qa.DEFAULT_JUDGE,)
            self.qa = qa.WorkerQA(self.db, self.options.qa_every, judges)
        watch = LoopWatch(self, asyncio.get_running_loop())
        try:
            await self._register()
            self._install_signals()
            watch.start()
            ticker = asyncio.create_task(watch.ticker())
            log.info(
                "started: pid %d, concurrency %d, queues %s",
                os.getpid(),
                self.options.concurrency,
                ",".join(self.options.queues) or "all",
            )
            beat = asyncio.create_task(self._heartbeat_loop())
            listen = asyncio.create_task(self._wake_on_work())
            try:
                await self._main_loop()
                await self._drain()
            finally:
                for task in (beat, ticker, listen):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self._set_state(WorkerState.STOPPED)
            log.info("stopped: %d succeeded, %d failed", self.done, self.failed)
        finally:
            if watch.is_alive():
                watch.stop()
            self._pid_file.unlink(missing_ok=True)
            await self.db.close()
        return 0

    def request_drain(self) -> None:
        """Stop claiming and shut down gracefully (SIGTERM/SIGINT); twice = no grace."""
        if self.draining:
            log.info("second stop signal: releasing in-flight jobs without waiting")
            self._hurry.set()
        self.draining = True
        self._wake.set()

    def stop_overdue(self, now: float) -> bool:
        """A stop signal came and its grace is over (or a second one came)."""
        if self._stop_at is None:
            return False
        return self._stop_signals > 1 or now - self._stop_at >= self.options.grace

    @property
    def pid_file(self) -> Path:
        """This worker's PID file (removed when it stops)."""
        return self._pid_file

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, frame: object) -> None:
            # A plain handler runs even while a job blocks the loop, so the loop watch
            # learns of the stop; the drain itself runs on the loop.
            self._stop_signals += 1
            if self._stop_at is None:
                self._stop_at = time.monotonic()
            with contextlib.suppress(RuntimeError):  # the loop already closed: exiting anyway
                loop.call_soon_threadsafe(self.request_drain)

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (embedded use)
                signal.signal(sig, on_signal)

    async def _register(self) -> None:
        now = time.time()
        record = Worker(
            id=self.id,
            host=this_host(),
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
            heartbeat_interval=self.options.heartbeat,
            state=WorkerState.IDLE,
            queues=list(self.options.queues),
            concurrency=self.options.concurrency,
        )
        assert self.db is not None
        await self.db.write(lambda tx: tx.workers.register_worker(record))
        write_pid_file(self._pid_file)  # with this process's identity, owner-only

    async def _set_state(self, state: str) -> None:
        assert self.db is not None
        now = time.time()
        await self.db.write(lambda tx: tx.workers.set_worker_state(self.id, state, now))

    # ------------------------------------------------------------------ main loop

    async def _main_loop(self) -> None:
        idle_since = time.monotonic()
        idle_wait = 0.005
        while not self.draining:
            free = self.options.concurrency - len(self.inflight)
            claims = await self._exchange(free)
            for claimed in claims:
                self._start(claimed)
            now = time.monotonic()
            if claims or self.inflight:
                idle_since = now
            elif self.options.idle_exit is not None and now - idle_since >= self.options.idle_exit:
                return
            if claims and len(claims) == free:
                idle_wait = 0.005
                await self._wait(None)  # all slots full: wake when a job ends
            elif claims:
                idle_wait = 0.005
                await self._wait(idle_wait)
            else:
                # Nothing runnable: back off up to `poll`, but wake as soon as a job ends.
                idle_wait = min(self.options.poll, idle_wait * 2)
                await self._wait(idle_wait)

    async def _wake_on_work(self) -> None:
        """Cut an idle wait short when another process makes work claimable (PostgreSQL
        notifies); on SQLite each wait just runs out and the idle back-off polls as before."""
        assert self.db is not None
        while not self.draining:
            if await self.db.wait_for_work(WORK_WAIT_SECONDS):
                self._wake.set()

    async def _wait(self, timeout: float | None) -> None:
        if self.outcomes or self.draining:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _exchange(self, free: int) -> list[Claim]:
        """One transaction: record stages, progress and finished outcomes, then claim up to
        `free` jobs."""
        outcomes, self.outcomes = self.outcomes, []
        report = self.stages.take()
        now = time.time()
        options = self.options

        def run(tx: Tx) -> tuple[list[int], list[Claim], list[int]]:
            _save(tx, report)  # before `finish`, which ends the claims they are fenced by
            accepted = tx.jobs.finish(self.id, outcomes)
            sampled = self._qa_sample(tx, outcomes, accepted)
            claims: list[Claim] = []
            if free > 0:
                claims = tx.jobs.claim(
                    self.id,
                    queue.new_token(),
                    free,
                    options.lease_seconds,
                    options.queues,
                    now,
                )
            return accepted, claims, sampled

        assert self.db is not None
        accepted, claims, sampled = await self.db.write(run)
        self._count(outcomes, accepted)
        if self.qa is not None:
            self.qa.judge(sampled)
        return claims

    def _qa_sample(self, tx: Tx, outcomes: Sequence[Outcome], accepted: Sequence[int]) -> list[int]:
        """Successes to judge, numbered per queue in the transaction that records them."""
        if self.qa is None:
            return []
        ok = set(accepted)
        succeeded = [o.job_id for o in outcomes if o.status == JobStatus.SUCCEEDED]
        return self.qa.sample(tx, [job_id for job_id in succeeded if job_id in ok])

    def _count(self, outcomes: Sequence[Outcome], accepted: Sequence[int]) -> None:
        ok = set(accepted)
        for outcome in outcomes:
            if outcome.job_id not in ok:
                continue
            if outcome.status == JobStatus.SUCCEEDED:
                self.done += 1
            elif outcome.status == JobStatus.FAILED:
                self.failed += 1

    def _start(self, claimed: Claim) -> None:
        task = asyncio.create_task(self._run_job(claimed), name=f"job-{claimed.job_id}")
        self.inflight[claimed.job_id] = (claimed, task)

    async def _run_job(self, claimed: Claim) -> None:
        try:
            outcome = await run_attempt(claimed, self.options, self.stages)
        except asyncio.CancelledError:
            if claimed.job_id not in self.cancel_requested:
                raise  # drain timeout: the claim is released, not reported
            outcome = queue.cancelled(claimed)
        finally:
            self.inflight.pop(claimed.job_id, None)
            self.stages.ended(claimed.job_id)
        self.cancel_requested.discard(claimed.job_id)
        self.outcomes.append(outcome)
        self._wake.set()

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._beat()
            except StoreError as exc:
                # A missed beat is survivable (the lease outlives several intervals).
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.options.heartbeat)

    async def _beat(self) -> None:
        held = [(job_id, claimed.token) for job_id, (claimed, _) in self.inflight.items()]
        state = (
            WorkerState.DRAINING
            if self.draining
            else WorkerState.BUSY
            if held
            else WorkerState.IDLE
        )
        options = self.options
        report = self.stages.take()

        def run(tx: Tx) -> tuple[HeartbeatReply, int]:
            now = time.time()
            _save(tx, report)
            reply = tx.workers.heartbeat(
                self.id, state, held, self.done, self.failed, options.lease_seconds, now
            )
            rescued = tx.jobs.rescue(ALL_JOBS, now)
            tx.workers.mark_stale_workers(STALE_AFTER_INTERVALS, now)
            return reply, rescued

        assert self.db is not None
        try:
            reply, rescued = await self.db.write(run)
        except StoreError:
            if report is not None:
                self.stages.put_back(report)  # saved by the next transaction instead
            raise
        if rescued:
            log.info("rescued %d jobs whose worker stopped heartbeating", rescued)
        if reply.stop and not self.draining:
            # `workers stop` from a host that cannot signal us: drain as on SIGTERM.
            log.info("stop requested through the database")
            self._stop_signals += 1
            self._stop_at = time.monotonic()
            self.request_drain()
        for job_id in reply.cancel:
            entry = self.inflight.get(job_id)
            if entry is not None:
                self.cancel_requested.add(job_id)
                entry[1].cancel()

    # ------------------------------------------------------------------ drain

    async def _drain(self) -> None:
        """Let in-flight jobs finish within the grace period, then release the rest."""
        self.draining = True
        with contextlib.suppress(StoreError):
            await self._beat()  # show `draining` at once
        tasks = [task for _, task in self.inflight.values()]
        log.info("draining: %d jobs in flight, grace %gs", len(tasks), self.options.grace)
        if tasks:
            await self._grace(tasks)
        leftover = [claimed for claimed, _ in self.inflight.values()]
        for _, task in list(self.inflight.values()):
            task.cancel()
        for _, task in list(self.inflight.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._exchange(0)
        if leftover:
            held = [(c.job_id, c.token) for c in leftover]
            now = time.time()
            assert self.db is not None
            await self.db.write(lambda tx: tx.workers.release(self.id, held, now))
            log.info("released %d unfinished jobs back to pending", len(leftover))
        if self.qa is not None:
            grace = 0.0 if self._hurry.is_set() else self.options.grace
            await self.qa.drain(grace)  # judges of the last sampled jobs

    async def _grace(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for the tasks until the grace period ends or a second signal comes."""
        finished = asyncio.ensure_future(asyncio.wait(tasks))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            (finished, hurry), timeout=self.options.grace, return_when=asyncio.FIRST_COMPLETED
        )
        finished.cancel()  # cancels the waiting only, not the jobs
        hurry.cancel()


def _save(tx: Tx, report: StageReport | None) -> None:
    """Save the stage marks and progress a transaction took (nothing when there are none)."""
    if report is not None:
        tx.stages.save(report.marks, report.progress)


def run_worker(options: WorkerOptions, worker_id: str | None = None) -> int:
    """Entry point of `batchdash worker`: run one worker process to completion."""
    return asyncio.run(WorkerProcess(options, worker_id).run())


# --------------------------------------------------------------------------- liveness


async def check_workers(db: Store) -> None:
    """Mark workers dead (their process is gone from this host) or stale (no heartbeat)."""
    host = this_host()

    def run(tx: Tx) -> None:
        now = time.time()
        for worker in tx.workers.list_workers():
            live_state = worker.state not in (WorkerState.STOPPED, WorkerState.DEAD)
            if live_state and worker.host == host and not pid_alive(worker.pid):
                tx.workers.set_worker_state(worker.id, WorkerState.DEAD, now)
        tx.workers.mark_stale_workers(STALE_AFTER_INTERVALS, now)

    await db.write(run)
