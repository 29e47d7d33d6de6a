"""Submit and poll leases: which live process works on a batch right now.

A lease names its owner (host:pid:nonce) and an expiry; it is free once expired or once
its process is gone, so `reconcile` and pollers take over the work of a dead process and
never race a live one. Holders renew it every third of its life while they work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import BatchError
from batchdash.core.liveness import pid_alive, this_host
from batchdash.core.models import Batch, BatchState
from batchdash.core.providers.base import Reconciled

if TYPE_CHECKING:
    from batchdash.core.providers.clients import Clients

#: Seconds a submit or poll lease lasts without renewal; renewed every third of that.
LEASE_SECONDS = 60.0


def new_owner() -> str:
    """A fresh lease owner naming this process (host:pid:nonce), so others can see it die."""
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_free(lease: tuple[str, float] | None, now: float) -> bool:
    """True when nobody alive holds the lease (expired, or its process is gone)."""
    if lease is None or lease[1] < now:
        return True
    host, pid, _ = lease[0].split(":", 2)
    return host == this_host() and pid.isdigit() and not pid_alive(int(pid))


def take_lease(tx: Tx, batch_id: int, owner: str, now: float) -> bool:
    """Take the submit lease of a still-submitting batch if nobody alive holds it."""
    batch = tx.batches.get_batch(batch_id)
    if batch.state != BatchState.SUBMITTING:
        return False
    lease = tx.batches.get_submit_lease(batch_id)
    if lease is not None and lease[0] != owner and not lease_free(lease, now):
        return False
    tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)
    return True


def confirm_lease(tx: Tx, batch_id: int, owner: str, now: float) -> None:
    """Extend our lease; BatchError if another process took over the submission."""
    lease = tx.batches.get_submit_lease(batch_id)
    if lease is None or lease[0] != owner:
        raise BatchError(f"batch {batch_id}: another process took over its submission")
    tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)


@contextlib.asynccontextmanager
async def renewing(
    db: Store, renew: Callable[[Any], object], release: Callable[[Any], object]
) -> AsyncIterator[None]:
    """Renew a lease every third of its life while the body runs (a big upload or
    ingestion takes minutes), then release it."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await db.write(renew)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, BatchError):
            await task
        await db.write(release)


def holding(db: Store, batch_id: int, owner: str) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold the submit lease of a batch while the body runs."""

    def renew(tx: Tx) -> None:
        confirm_lease(tx, batch_id, owner, time.time())

    return renewing(
        db, renew, lambda tx: tx.batches.drop_submit_lease(batch_id=batch_id, owner=owner)
    )


@contextlib.asynccontextmanager
async def poll_claim(db: Store, batch: Batch) -> AsyncIterator[Batch | None]:
    """Claim a due batch for polling: the batch as it is now, or None if another poller has it.

    The claim is a compare-and-set on the batch row and hands back the row as it is now,
    so the work never starts from a stale read; the lease is renewed while the body runs
    (an ingestion can take minutes) and released at the end.
    """
    owner = new_owner()
    now = time.time()
    holder = batch.poll_owner
    lease = None if holder is None else (holder, batch.poll_lease_until or 0.0)
    claimed = await db.write(
        lambda tx: tx.batches.claim_batch_poll(
            batch_id=batch.id,
            owner=owner,
            until=now + LEASE_SECONDS,
            now=now,
            dead_owner=holder if lease is not None and lease_free(lease, now) else None,
        )
    )
    if claimed is None:
        yield None
        return

    def renew(tx: Tx) -> None:
        tx.batches.renew_batch_poll(batch.id, owner, time.time() + LEASE_SECONDS)

    def release(tx: Tx) -> None:
        tx.batches.release_batch_poll(batch.id, owner)

    async with renewing(db, renew, release):
        yield claimed


async def adopt(
    db: Store, batch_id: int, owner: str, remote_id: str, fields: dict[str, Any]
) -> None:
    """Link a `submitting` batch to the remote batch reconcile found, and drop our lease."""
    now = time.time()

    def write(tx: Tx) -> None:
        tx.batches.update_batch(batch_id, {}, now, ("batch_reconciled", remote_id))
        tx.batches.record_remote(batch_id, fields, now)
        tx.batches.drop_submit_lease(batch_id, owner)

    await db.write(write)


async def reconcile_stuck(
    db: Store,
    clients: Clients,
    provider: str,
    finish: Callable[[Store, Any, Batch, str], Awaitable[str]],
    explain: Callable[[BaseException], str],
    permanent: Callable[[BaseException], bool],
) -> list[Reconciled]:
    """Finish every `provider` batch left `submitting` that nobody alive is submitting.

    Each is taken under a fresh submit lease (a batch whose lease a live process holds is
    skipped) and handed to `finish(db, client, batch, owner)`, which returns what it did. A
    failure is recorded on its batch ("error: …", described by `explain`) and the others
    are still reconciled.
    """
    from batchdash.core.remote import note_failure  # the remote layer sits above providers

    stuck = await db.read(lambda tx: tx.batches.submitting_batches())
    done = []
    for batch in (b for b in stuck if b.provider == provider):
        owner = new_owner()
        taken = await db.write(partial(take_lease, batch_id=batch.id, owner=owner, now=time.time()))
        if not taken:
            continue  # a live process is submitting it right now
        try:
            client = await clients.for_batch(batch)
            done.append(Reconciled(batch.id, await finish(db, client, batch, owner)))
        except Exception as exc:  # recorded on the batch; the others still get reconciled
            refused = permanent(exc)
            await note_failure(db, batch.id, explain(exc), permanent=refused)
            done.append(Reconciled(batch.id, f"error: {explain(exc)}", refused))
    return done
