"""The durable job queue: enqueue, claim, report outcomes, cancel, retry, resume, pause.

Policy lives here (retry backoff, what counts as an attempt); the SQL it needs lives in
`core.db` (the repositories of `core.db.ports`). Every function is one transaction, and
every state change writes its event row in that same transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from batchdash.core import batches
from batchdash.core.actor import Actor
from batchdash.core.db.ports import Store, Tx
from batchdash.core.models import ALL_JOBS, Claim, JobFilter, JobStatus, NewJob, Outcome, dumps
from batchdash.core.retry import backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter between attempts of a failing job.

    The n-th retry waits `base * factor**(n-1)` seconds (capped at `max_delay`), spread by
    ±`jitter` so a burst of failures does not come back as a burst; a provider's
    `retry-after` is honoured when it asks for longer.
    """

    base: float = 2.0
    factor: float = 2.0
    max_delay: float = 600.0
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the attempt after `attempt` (1-based)."""
        delay = backoff(
            attempt - 1, self.base, self.max_delay, jitter=self.jitter, factor=self.factor
        )
        return max(delay, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """How many jobs a call added, and how many keys were already in the queue."""

    inserted: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens (and cost in USD, when a price is known) spent by one attempt."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


def new_token() -> str:
    """A fresh claim token; completion is accepted only with the token of the live claim."""
    return uuid.uuid4().hex


async def enqueue(
    db: Store,
    queue: str,
    jobs: Sequence[NewJob],
    *,
    handler: str = "sim",
    endpoint_name: str | None = None,
) -> EnqueueResult:
    """Add jobs to `queue` in one transaction (all or nothing), idempotent on each key.

    `endpoint_name` names the config file's endpoint their handler calls (None: default).
    """
    write = enqueue_write(queue, jobs, handler=handler, endpoint_name=endpoint_name)
    return EnqueueResult(*await db.write(write))


def enqueue_write(
    queue: str, jobs: Sequence[NewJob], *, handler: str, endpoint_name: str | None = None
) -> Callable[[Tx], tuple[int, int]]:
    """The enqueue transaction as a write function returning (inserted, skipped).

    For callers that run it on their own connection (the CLI runs it on a thread it can
    interrupt with Ctrl-C).
    """

    tagged = [job for job in jobs if job.tags]

    def write(tx: Tx) -> tuple[int, int]:
        # A key the queue already has is skipped, and keeps its own tags.
        known = tx.items.existing_job_keys(queue, [job.key for job in tagged]) if tagged else {}
        counts = tx.jobs.enqueue(
            queue=queue,
            handler=handler,
            jobs=jobs,
            now=time.time(),
            batch_id=None,
            endpoint_name=endpoint_name,
        )
        tx.tags.tag_jobs(queue, [job for job in tagged if job.key not in known])
        return counts

    return write


async def claim(
    db: Store,
    worker_id: str,
    limit: int,
    *,
    lease_seconds: float,
    queues: Sequence[str] = (),
) -> list[Claim]:
    """Atomically take up to `limit` runnable jobs, leased to `worker_id`."""
    return await db.write(
        lambda tx: tx.jobs.claim(
            worker_id=worker_id,
            token=new_token(),
            limit=limit,
            lease_seconds=lease_seconds,
            queues=queues,
            now=time.time(),
        )
    )


def succeeded(job: Claim, result: Any, usage: Usage | None = None) -> Outcome:
    """The outcome of an attempt that returned a result (TypeError if not JSON-ready)."""
    usage = usage or Usage()
    return Outcome(
        job_id=job.job_id,
        token=job.token,
        status=JobStatus.SUCCEEDED,
        finished_at=time.time(),
        result_json=None if result is None else dumps(result),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost=usage.cost,
    )


def failed(
    job: Claim,
    error: str,
    *,
    kind: str,
    retryable: bool,
    policy: RetryPolicy,
    retry_after: float | None = None,
    usage: Usage | None = None,
) -> Outcome:
    """The outcome of an attempt that raised: a retry later, or final failure."""
    now = time.time()
    usage = usage or Usage()
    common: dict[str, Any] = {
        "job_id": job.job_id,
        "token": job.token,
        "finished_at": now,
        "error": error,
        "error_kind": kind,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": usage.cost,
    }
    if retryable and job.attempts < job.max_attempts:
        wait = policy.delay(job.attempts, retry_after)
        return Outcome(
            status=JobStatus.PENDING,
            run_after=now + wait,
            event="retry_scheduled",
            detail=f"attempt {job.attempts}/{job.max_attempts} failed ({kind}); "
            f"retry in {wait:.2f}s: {error[:200]}",
            **common,
        )
    reason = "not retryable" if not retryable else "attempts exhausted"
    return Outcome(
        status=JobStatus.FAILED,
        detail=f"{reason} after attempt {job.attempts}/{job.max_attempts} ({kind}): {error[:200]}",
        **common,
    )


def cancelled(job: Claim) -> Outcome:
    """The outcome of an attempt aborted because the user cancelled the job."""
    return Outcome(
        job_id=job.job_id,
        token=job.token,
        status=JobStatus.CANCELLED,
        finished_at=time.time(),
        error="cancelled while running",
        error_kind="cancelled",
        detail="aborted by the worker after a cancel request",
    )


async def report(db: Store, worker_id: str, outcomes: Sequence[Outcome]) -> list[int]:
    """Record outcomes in one transaction; returns the job ids whose claim was still live."""
    if not outcomes:
        return []
    return await db.write(lambda tx: tx.jobs.finish(worker_id=worker_id, outcomes=outcomes))


def _require_targets(tx: Tx, flt: JobFilter) -> None:
    """Fail with a one-line error when the user named ids or queues that do not exist."""
    tx.jobs.require_jobs(flt.ids)
    for queue in flt.queues:
        tx.queues.require_queue(queue)


async def cancel(db: Store, flt: JobFilter, actor: Actor | None = None) -> tuple[int, int]:
    """Cancel matching jobs: pending ones at once, running ones through their lease.

    Returns (cancelled now, cancel requested from running workers). Like every action here,
    the events it writes name `actor` (who asked, from where) for the audit trail.
    """
    now = time.time()

    def run(tx: Tx) -> tuple[int, int]:
        _require_targets(tx, flt)
        return tx.jobs.cancel(flt, now, actor)

    return await db.write(run)


async def retry(db: Store, flt: JobFilter, actor: Actor | None = None) -> int:
    """Send matching failed or cancelled jobs back to pending with fresh attempts."""
    now = time.time()

    def run(tx: Tx) -> int:
        _require_targets(tx, flt)
        return tx.jobs.retry(flt, now, actor)

    return await db.write(run)


async def remote_retries(db: Store, flt: JobFilter) -> list[batches.RemoteJobs]:
    """The failed/cancelled jobs of `flt` that remote batches ran, per batch.

    `retry` leaves them alone: a remote line runs again only as part of a child batch, so
    the caller says which `batches resubmit` does it.
    """
    return await db.read(partial(batches.remote_jobs, flt=flt))


async def rescue_expired(db: Store, flt: JobFilter = ALL_JOBS) -> int:
    """Take back running jobs whose lease expired or whose worker is known dead."""
    return await db.write(lambda tx: tx.jobs.rescue(flt=flt, now=time.time()))


async def resume(db: Store, flt: JobFilter, actor: Actor | None = None) -> tuple[int, list[str]]:
    """Rescue expired leases among matching jobs and un-pause their queues.

    Returns (jobs rescued, queues un-paused). Without queues in the filter every paused
    queue is resumed, except those whose spend reached their budget (they stay paused
    until the budget is raised or cleared; naming one alone raises BudgetError).
    """
    now = time.time()

    def run(tx: Tx) -> tuple[int, list[str]]:
        _require_targets(tx, flt)
        rescued = tx.jobs.rescue(flt, now, actor)
        targets = flt.queues or tuple(q.name for q in tx.queues.list_queues())
        paused = [
            q.name
            for q in tx.queues.list_queues()
            if q.paused and q.name in targets and (flt.queues or not q.budget_reached)
        ]
        for name in paused:
            tx.queues.set_paused(name, False, now, actor)
        return rescued, paused

    return await db.write(run)


async def set_paused(db: Store, queue: str, paused: bool, actor: Actor | None = None) -> None:
    """Pause or resume one queue (NotFoundError if it does not exist)."""
    await db.write(lambda tx: tx.queues.set_paused(queue, paused, time.time(), actor))
