"""Durable submission, shared by every provider: record the intent, then send it.

The intent (batches, items, jobs) is written in one transaction together with a submit lease
naming this process, and only then sent, batch by batch, through the provider's own client
and `send` step. A crash after the write leaves `submitting` batches that the provider's
`reconcile` finishes once the lease is free, without creating a second remote batch.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from batchdash.core import batches
from batchdash.core.actor import Actor
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import Endpoint, batch_endpoint
from batchdash.core.providers.leases import LEASE_SECONDS, new_owner

#: A provider's client for an endpoint, closed on exit (`openai_remote.connect`, …).
Connect = Callable[[Endpoint], AbstractAsyncContextManager[Any]]
#: A provider's step that sends one recorded batch whose lease `owner` holds.
SendOne = Callable[[Store, Any, int, str], Awaitable[None]]


async def record_and_send(
    db: Store,
    record: Callable[[Tx, float], list[int]],
    target: Endpoint,
    connect: Connect,
    send_one: SendOne,
) -> list[int]:
    """Write `record(tx, now)`'s batches under a fresh submit lease, then send each to
    `target`; their local ids."""
    owner = new_owner()

    def leased(tx: Tx) -> list[int]:
        now = time.time()
        ids = record(tx, now)
        for batch_id in ids:
            tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)
        return ids

    ids = await db.write(leased)
    async with connect(target) as client:
        for batch_id in ids:
            await send_one(db, client, batch_id, owner)
    return ids


async def resubmit_leased(
    db: Store,
    batch_id: int,
    *,
    include_permanent: bool,
    actor: Actor | None,
    connect: Connect,
    send_one: SendOne,
) -> int:
    """Record a finished batch's failed, expired, cancelled and missing lines as a linked
    child at the parent's endpoint, then send it; the child's local id.

    Lines whose error cannot pass on retry go too only with `include_permanent`.
    """
    parent = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    target = batch_endpoint(parent)  # the child keeps the parent's endpoint
    target.key()  # no key (or a vanished endpoint): nothing recorded

    def record(tx: Tx, now: float) -> list[int]:
        child = batches.record_resubmit(
            tx, batch_id, now, include_permanent=include_permanent, actor=actor
        )
        return [child]

    [child] = await record_and_send(db, record, target, connect, send_one)
    return child
