"""Sending one recorded batch to Anthropic's Message Batches: `create` once, never blindly twice.

The requests go inline (there is no file upload). Before the first `create` leaves, the
time is recorded on the batch (`CREATE_SENT_META`): until then nothing can exist remotely.
After a failure that may hide an accepted batch (timeout, 5xx, 529, connection lost) the
account's batches are searched (`find_created`) before trying again; a 429 is a clean
refusal and simply retried after its retry-after. The submit lease is held throughout,
so a process that takes over never sends the same batch twice.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from batchdash.core.batch_results import reject_batch
from batchdash.core.batches import CREATE_SENT_META
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import ProviderError
from batchdash.core.models import Batch
from batchdash.core.providers import _anthropic
from batchdash.core.providers.anthropic_input import requests_of
from batchdash.core.providers.anthropic_remote import (
    epoch,
    list_batches,
    pause,
    request_count,
    save_remote,
)
from batchdash.core.providers.leases import confirm_lease, holding
from batchdash.core.remote import note_failure
from batchdash.core.retry import retryable_status

#: Attempts at `create` (after 429s or ambiguous failures) before giving up for this run.
CREATE_ATTEMPTS = 6
#: How far apart our clock and the provider's may be when matching creation times.
CLOCK_MARGIN = 300.0


async def send(db: Store, client: Any, batch_id: int, owner: str) -> None:
    """Create one batch we hold the submit lease of, with its requests from the store."""
    async with holding(db, batch_id, owner):
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
        requests = await db.read(partial(requests_of, batch_id=batch_id))
        await _create(db, client, batch, owner, requests)


def create_sent_at(batch: Batch) -> float | None:
    """When `create` was first sent for this batch; None if it never was."""
    value = (batch.metadata or {}).get(CREATE_SENT_META)
    return None if value is None else float(value)


def _mark_sent(tx: Tx, batch_id: int, owner: str, now: float) -> None:
    """Confirm our lease and, on the first attempt, record that `create` is being sent."""
    confirm_lease(tx, batch_id, owner, now)
    batch = tx.batches.get_batch(batch_id)
    if create_sent_at(batch) is None:
        metadata = {**(batch.metadata or {}), CREATE_SENT_META: repr(now)}
        tx.batches.update_batch(batch_id, {"metadata": metadata}, now)


async def _create(
    db: Store, client: Any, batch: Batch, owner: str, requests: list[dict[str, Any]]
) -> None:
    """Create the remote batch; after an ambiguous failure, look for it before retrying."""
    import anthropic

    creator = client.with_options(max_retries=0)  # no idempotency key: never retried blindly
    note = "created"
    for attempt in range(CREATE_ATTEMPTS):
        await db.write(partial(_mark_sent, batch_id=batch.id, owner=owner, now=time.time()))
        try:
            remote = await creator.messages.batches.create(requests=requests)
            break
        except anthropic.APIStatusError as exc:
            if not retryable_status(exc.status_code):
                await _reject(db, batch, exc)
                raise ProviderError(
                    f"batch {batch.id}: provider refused it: {_anthropic.describe(exc)}"
                ) from exc
            error: BaseException = exc
        except anthropic.APIConnectionError as exc:  # timeouts included
            error = exc
        found = None
        if not isinstance(error, anthropic.RateLimitError):  # a 429 created nothing
            sent = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch.id))
            found = await find_created(db, client, sent)
        if found is not None:
            remote = found
            note = f"found after an ambiguous create error ({_anthropic.describe(error)})"
            break
        await note_failure(db, batch.id, _anthropic.describe(error))
        if attempt + 1 == CREATE_ATTEMPTS:
            raise ProviderError(
                f"batch {batch.id}: create keeps failing: {_anthropic.describe(error)}"
            )
        await pause(error, attempt)
    await save_remote(db, batch, remote, event=("batch_created", f"{remote.id}: {note}"))


async def _reject(db: Store, batch: Batch, exc: Any) -> None:
    message = _anthropic.describe(exc)
    code = _anthropic.error_type(exc)
    await db.write(
        partial(reject_batch, batch_id=batch.id, message=message, code=code, now=time.time())
    )


async def find_created(db: Store, client: Any, batch: Batch) -> Any | None:
    """The remote batch an earlier `create` of this local batch made, if one exists.

    Message Batches carry no metadata, so the match is on what we know of our call: a
    batch created no earlier than our first `create` was sent (less CLOCK_MARGIN for the
    two clocks), holding exactly as many requests, and not tracked locally already. The
    oldest such batch is taken. That is enough when this account has no other client
    creating same-sized batches in that window: our own shards and resubmits are sent
    one at a time, each only after the previous one's id was recorded (so it is tracked
    and excluded). What remains ambiguous: another process or tool creating a batch of
    the same size in the same window (e.g. two identical-size submissions in the same
    second) could be adopted instead; its results would then name custom_ids we do not
    have, and our lines would come out `missing` rather than be silently mixed up.
    """
    sent = create_sent_at(batch)
    if sent is None:
        return None  # create was never sent: nothing can exist remotely
    known = await db.read(lambda tx: tx.batches.known_remote_ids())
    found = None
    async for remote in list_batches(client):
        created = epoch(remote.created_at) or 0.0
        if created < sent - CLOCK_MARGIN:
            break  # newest first: everything further is older still
        if remote.id not in known and request_count(remote) == batch.total:
            found = remote  # keep going: the oldest match is the first create
    return found
