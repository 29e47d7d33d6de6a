"""Anthropic Message Batches client: validate → record → create → poll → ingest → cancel.

The `anthropic` provider (`PROVIDER`, a `BatchProvider`), through the official SDK (the
`anthropic` extra). The endpoint and key come from ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY
and the key is never written anywhere; every later call on a batch goes to the base URL
stored with it. `anthropic` is imported only by the functions that talk to the provider.

Failure policy (as for OpenAI): the intent is stored first and a lease names the process
submitting it; idempotent calls retry 429/5xx/529 with our backoff or the provider's
retry-after (`anthropic_remote.call`); `create` is never retried blindly
(`anthropic_send`). The work is done by `anthropic_input` (the rules of a line),
`anthropic_send` (create), `anthropic_ingest` (poll and results) and `anthropic_remote`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import batches
from batchdash.core.actor import Actor, by_user, event_detail
from batchdash.core.batch_input import InputPlan
from batchdash.core.batch_results import TERMINAL_RAW
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import batch_endpoint, default_endpoint, resolve
from batchdash.core.errors import BatchError
from batchdash.core.models import Batch, BatchState
from batchdash.core.pricing import price_of
from batchdash.core.providers import _anthropic, anthropic_input
from batchdash.core.providers.anthropic_ingest import poll_batch
from batchdash.core.providers.anthropic_remote import (
    Clients,
    call,
    connect,
    epoch,
    is_permanent,
    list_batches,
    remote_fields,
    request_count,
    save_remote,
)
from batchdash.core.providers.anthropic_send import CLOCK_MARGIN, create_sent_at, find_created, send
from batchdash.core.providers.base import BatchProvider, Reconciled, UploadProgress
from batchdash.core.providers.clients import ClientSession, require_listed
from batchdash.core.providers.leases import (
    adopt,
    reconcile_stuck,
)
from batchdash.core.providers.submission import record_and_send, resubmit_leased

#: The name batches of this provider carry in the store (`batches.provider`).
NAME = "anthropic"


# --------------------------------------------------------------------------- submission


async def submit_file(
    db: Store,
    path: Path,
    *,
    queue: str,
    endpoint: str | None = None,
    endpoint_name: str | None = None,
    metadata: dict[str, str] | None = None,
    on_upload: UploadProgress | None = None,
    tags: Sequence[str] = (),
    max_requests: int = anthropic_input.MAX_REQUESTS,
    max_bytes: int = anthropic_input.MAX_BYTES,
) -> list[int]:
    """Validate, record and create; returns the local batch ids (one per shard).

    Nothing is recorded or sent when the file is invalid (InputError names FILE:LINE) or
    no key is set. `metadata` stays local (Message Batches have none); `endpoint` must be
    the Messages API's if given; `endpoint_name` the config file's named endpoint, stored on
    the batches (None: the default one); `on_upload` is unused (requests go inline).
    """
    if endpoint not in (None, anthropic_input.ENDPOINT):
        raise BatchError(f"--endpoint {endpoint!r}: Anthropic batches go to /v1/messages")
    plan = anthropic_input.validate_file(path, max_requests=max_requests, max_bytes=max_bytes)
    target = resolve(endpoint_name, NAME)
    target.key()  # no key: refused before anything is recorded

    def record(tx: Tx, now: float) -> list[int]:
        return batches.record_intent(
            tx,
            plan,
            queue=queue,
            metadata=dict(metadata or {}),
            now=now,
            base_url=target.base_url,
            endpoint_name=target.name,
            provider=NAME,
            tags=tags,
        )

    return await record_and_send(db, record, target, connect, send)


# --------------------------------------------------------------------------- reconcile


async def reconcile(db: Store, clients: Clients | None = None) -> list[Reconciled]:
    """Finish every Anthropic `submitting` batch nobody alive is submitting.

    A batch whose `create` was sent is looked for in the account's list (`find_created`)
    and adopted if found; otherwise it is created now, once. Failures read "error: …".
    """
    if clients is None:
        async with Clients() as fresh:
            return await reconcile(db, fresh)
    return await reconcile_stuck(
        db, clients, NAME, _reconcile_one, _anthropic.describe, is_permanent
    )


async def _reconcile_one(db: Store, client: Any, batch: Batch, owner: str) -> str:
    found = await find_created(db, client, batch)
    if found is None:
        await send(db, client, batch.id, owner)
        return "submitted"
    await adopt(db, batch.id, owner, str(found.id), remote_fields(found, batch.total))
    return f"found {found.id}"


# --------------------------------------------------------------------------- actions


async def check_model(model: str) -> None:
    """ProviderError unless the provider lists this model (`submit --model-check`)."""
    async with connect() as client:
        await require_listed(client, model, default_endpoint(NAME).base_url)


async def _remote_batch(db: Store, batch_id: int) -> Batch:
    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    if batch.state == BatchState.SUBMITTING:
        raise BatchError(
            f"batch {batch.id} is still being submitted; run `batchdash batches reconcile` first"
        )
    if batch.remote_id is None:
        raise BatchError(f"batch {batch.id} has no batch at the provider ({batch.state})")
    return batch


async def cancel_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Ask the provider to cancel; the batch shows `cancelling` until it has ended."""
    batch = await _remote_batch(db, batch_id)
    if not batch.active or batch.raw_status in TERMINAL_RAW:
        raise BatchError(f"batch {batch.id} is already {batch.state}")
    async with connect(batch_endpoint(batch)) as client:
        remote = await call(client.messages.batches.cancel, batch.remote_id)
    await save_remote(db, batch, remote, event=("batch_cancel", f"requested {by_user(actor)}"))


async def delete_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Delete an ended, ingested batch at the provider (its results are kept here)."""
    batch = await _remote_batch(db, batch_id)
    if batch.ingested_at is None:
        raise BatchError(f"batch {batch.id} is {batch.state}; delete it once its results are in")
    async with connect(batch_endpoint(batch)) as client:
        await call(client.messages.batches.delete, batch.remote_id)
    detail = event_detail(actor, f"{batch.remote_id} deleted remotely")
    await db.write(
        lambda tx: tx.batches.update_batch(batch.id, {}, time.time(), ("batch_deleted", detail))
    )


async def resubmit_batch(
    db: Store, batch_id: int, *, include_permanent: bool = False, actor: Actor | None = None
) -> int:
    """Send the errored, expired, cancelled and missing lines again as a linked child.

    `invalid_request_error` lines go too only with `include_permanent`. Returns its id.
    """
    return await resubmit_leased(
        db,
        batch_id,
        include_permanent=include_permanent,
        actor=actor,
        connect=connect,
        send_one=send,
    )


async def import_batches(db: Store, *, queue: str = "imported") -> list[int]:
    """Adopt every batch of the account not tracked yet; their local ids.

    A batch that may be one of our interrupted submissions (same size, created after its
    `create` was sent) is left to `reconcile`, which links it to its local record.
    """
    known = await db.read(lambda tx: tx.batches.known_remote_ids())
    pending = [
        (create_sent_at(b), b.total)
        for b in await db.read(lambda tx: tx.batches.submitting_batches())
        if b.provider == NAME and create_sent_at(b) is not None
    ]
    target = default_endpoint(NAME)
    adopted = []
    async with connect(target) as client:
        async for remote in list_batches(client):
            created = epoch(remote.created_at) or 0.0
            size = request_count(remote)
            ours = any(size == n and created >= (t or 0) - CLOCK_MARGIN for t, n in pending)
            if remote.id in known or ours:
                continue
            fields = {**remote_fields(remote), "endpoint": anthropic_input.ENDPOINT}
            record = partial(
                batches.record_import,
                fields=fields,
                metadata=None,
                queue=queue,
                now=time.time(),
                base_url=target.base_url,
                provider=NAME,
            )
            adopted.append(await db.write(record))
    return adopted


# --------------------------------------------------------------------------- the provider


class AnthropicBatches:
    """Anthropic's Message Batches as a `BatchProvider`; the actions are this module's."""

    name = NAME
    submit_file = staticmethod(submit_file)
    resubmit = staticmethod(resubmit_batch)
    cancel = staticmethod(cancel_batch)
    delete = staticmethod(delete_batch)
    import_batches = staticmethod(import_batches)
    check_model = staticmethod(check_model)
    describe = staticmethod(_anthropic.describe)
    is_permanent = staticmethod(is_permanent)
    owns = staticmethod(_anthropic.owns)

    def check_ready(self) -> None:
        """MissingKeyError unless the default endpoint's key (ANTHROPIC_API_KEY) is set."""
        default_endpoint(NAME).key()

    def validate(self, path: Path, *, endpoint: str | None = None) -> InputPlan:
        """Check a `{custom_id, params}` JSONL file against Anthropic's rules."""
        return anthropic_input.validate_file(path)

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD at the batch rate (half the real-time one); None if unpriced."""
        return price_of(model, tokens_in, tokens_out, batch=True)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        """Clients for one poll cycle, closed at its end."""
        async with Clients() as clients:
            yield ClientSession(clients, poll_batch, reconcile)


#: What the registry (`core.providers.get_provider("anthropic")`) hands out.
PROVIDER: BatchProvider = AnthropicBatches()
