"""OpenAI Batch API client: validate → record → upload → create → poll → ingest → cancel.

The `openai` provider (`PROVIDER`, a `BatchProvider`). Works with any OpenAI-compatible
endpoint: `OPENAI_BASE_URL` and the key (OPENAI_API_KEY, or the variable the config file
names) come from `core.config`, and the key is never written anywhere. `openai` is imported
inside the functions that talk to the provider (it costs ~0.7 s), so importing this module
is cheap.

Failure policy:
- Idempotent calls (retrieve, list, cancel, file content, upload) use the SDK's own retries,
  which honour 429/5xx and `retry-after`; what still fails is recorded on the batch.
- `batches.create` is never retried blindly: a 429 is a clean refusal and is retried, but
  a 5xx or a network error may hide an accepted batch, so the batch list is searched for
  our submit key (also sent as metadata) before creating again.
- Submission is durable: the intent is stored first, and a lease names the process doing
  it, so `reconcile` finishes the work of a crashed submitter and never races a live one.

This module holds the entry points and the provider object; the work is done by
`openai_send` (upload and create), `openai_ingest` (poll and ingest), `openai_remote`
(clients and the provider's fields) and `leases`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import batch_input, batches
from batchdash.core.actor import Actor, by_user, event_detail
from batchdash.core.batch_input import InputPlan
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import batch_endpoint, default_endpoint, resolve
from batchdash.core.errors import BatchError, ProviderError
from batchdash.core.models import Batch, BatchState
from batchdash.core.pricing import price_of
from batchdash.core.providers._openai import describe
from batchdash.core.providers.base import BatchProvider, Reconciled, UploadProgress
from batchdash.core.providers.clients import ClientSession, require_listed
from batchdash.core.providers.leases import (
    adopt,
    reconcile_stuck,
)
from batchdash.core.providers.openai_ingest import poll_batch
from batchdash.core.providers.openai_remote import (
    Clients,
    connect,
    is_permanent,
    remote_fields,
    save_remote,
)
from batchdash.core.providers.openai_send import (
    find_by_submit_key,
    find_upload,
    record_upload,
    send,
)
from batchdash.core.providers.submission import record_and_send, resubmit_leased
from batchdash.core.retry import retryable_status

#: The name batches of this provider carry in the store (`batches.provider`).
NAME = "openai"


# --------------------------------------------------------------------------- submission


async def submit_file(
    db: Store,
    path: Path,
    *,
    queue: str,
    endpoint: str | None = None,
    endpoint_name: str | None = None,
    metadata: dict[str, str] | None = None,
    max_lines: int = batch_input.MAX_LINES,
    max_bytes: int = batch_input.MAX_BYTES,
    on_upload: UploadProgress | None = None,
    tags: Sequence[str] = (),
) -> list[int]:
    """Validate, record, upload and create; returns the local batch ids (one per shard).

    Nothing is recorded or uploaded when the file is invalid (InputError lists the lines)
    or no key is configured. After the intent is recorded, an error leaves `submitting`
    batches that `reconcile` (or the next poll) completes without submitting twice.
    `endpoint` is the request URL of the lines (`/v1/chat/completions`); `endpoint_name`
    the config file's named endpoint, stored on the batches (None: the default one).
    `on_upload(sent, size)` follows each shard's upload.
    """
    user_meta = dict(metadata or {})
    batch_input.check_metadata({**user_meta, batches.SUBMIT_KEY_META: "", batches.SHARD_META: ""})
    plan = batch_input.validate_file(
        path, endpoint=endpoint, max_lines=max_lines, max_bytes=max_bytes
    )
    target = resolve(endpoint_name, NAME)
    target.key()  # no key: refused before anything is recorded

    def record(tx: Tx, now: float) -> list[int]:
        return batches.record_intent(
            tx,
            plan,
            queue=queue,
            metadata=user_meta,
            now=now,
            base_url=target.base_url,
            endpoint_name=target.name,
            provider=NAME,
            tags=tags,
        )

    return await record_and_send(db, record, target, connect, partial(send, on_upload=on_upload))


# --------------------------------------------------------------------------- reconcile


async def reconcile(db: Store, clients: Clients | None = None) -> list[Reconciled]:
    """Finish every `submitting` batch nobody alive is submitting.

    Adopts the remote batch found by its submit key, or else uploads and creates it, at
    the batch's own endpoint. Failures read "error: …".
    """
    if clients is None:
        async with Clients() as fresh:
            return await reconcile(db, fresh)
    return await reconcile_stuck(db, clients, NAME, _reconcile_one, describe, is_permanent)


async def _reconcile_one(db: Store, client: Any, batch: Batch, owner: str) -> str:
    # Create is only ever called after input_file_id is recorded: without it, nothing
    # can exist remotely and the list need not be searched.
    found = None
    if batch.input_file_id is not None:
        found = await find_by_submit_key(client, str(batch.submit_key), batch.created_at)
    else:
        # Its submitter may have died between the upload and recording it.
        file_id = await find_upload(client, batch)
        if file_id is not None:
            await record_upload(db, batch.id, file_id, "found after an interrupted upload")
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


async def cancel_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Ask the provider to cancel; the batch shows `cancelling` until it is `cancelled`."""
    import openai

    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    if batch.state == BatchState.SUBMITTING or batch.remote_id is None:
        raise BatchError(
            f"batch {batch.id} is still being submitted; run `batchdash batches reconcile` first"
        )
    if not batch.active:
        raise BatchError(f"batch {batch.id} is already {batch.state}")
    async with connect(batch_endpoint(batch)) as client:
        try:
            remote = await client.batches.cancel(batch.remote_id)
        except openai.APIStatusError as exc:
            if retryable_status(exc.status_code):
                raise
            remote = await client.batches.retrieve(batch.remote_id)
            await save_remote(db, batch, remote)
            raise ProviderError(
                f"batch {batch.id}: provider refused cancel: {describe(exc)}"
            ) from exc
    await save_remote(db, batch, remote, event=("batch_cancel", f"requested {by_user(actor)}"))


async def delete_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Delete an ingested batch's input, output and error files at the provider (the Batch
    API keeps batch objects; their files are what holds the data)."""
    import openai

    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    if batch.ingested_at is None:
        raise BatchError(f"batch {batch.id} is {batch.state}; delete it once its results are in")
    files = [f for f in (batch.input_file_id, batch.output_file_id, batch.error_file_id) if f]
    async with connect(batch_endpoint(batch)) as client:
        for file_id in files:
            with contextlib.suppress(openai.NotFoundError):  # already gone is what we want
                await client.files.delete(file_id)
    detail = event_detail(actor, f"files deleted remotely: {', '.join(files) or 'none'}")
    await db.write(
        lambda tx: tx.batches.update_batch(batch.id, {}, time.time(), ("batch_deleted", detail))
    )


async def resubmit_batch(
    db: Store, batch_id: int, *, include_permanent: bool = False, actor: Actor | None = None
) -> int:
    """Send the failed, expired, cancelled and missing lines again as a child batch.

    Lines whose error will not pass on retry go too only with `include_permanent`. The
    child goes to the parent's endpoint. Returns the child's local id.
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
    """Adopt every batch of the account not tracked yet (paged list); their local ids.

    A batch carrying one of our submit keys is left to `reconcile`, which links it to the
    local record it belongs to.
    """
    known = await db.read(lambda tx: tx.batches.known_remote_ids())
    ours = {b.submit_key for b in await db.read(lambda tx: tx.batches.submitting_batches())}
    adopted = []
    target = default_endpoint(NAME)
    async with connect(target) as client:
        async for remote in client.batches.list(limit=100):
            key = (remote.metadata or {}).get(batches.SUBMIT_KEY_META)
            if remote.id in known or (key is not None and key in ours):
                continue
            fields = remote_fields(remote)
            adopted.append(
                await db.write(
                    partial(
                        batches.record_import,
                        fields=fields,
                        metadata=remote.metadata,
                        queue=queue,
                        now=time.time(),
                        base_url=target.base_url,
                        provider=NAME,
                    )
                )
            )
    return adopted


# --------------------------------------------------------------------------- the provider


class OpenAIBatches:
    """The OpenAI Batch API (and compatible endpoints) as a `BatchProvider`.

    The actions are this module's functions; `Clients` serves a poll cycle's session.
    """

    name = NAME
    submit_file = staticmethod(submit_file)
    resubmit = staticmethod(resubmit_batch)
    cancel = staticmethod(cancel_batch)
    delete = staticmethod(delete_batch)
    import_batches = staticmethod(import_batches)
    check_model = staticmethod(check_model)
    describe = staticmethod(describe)
    is_permanent = staticmethod(is_permanent)

    def check_ready(self) -> None:
        """MissingKeyError (or ConfigError) unless the default endpoint has a key."""
        default_endpoint(NAME).key()

    def validate(self, path: Path, *, endpoint: str | None = None) -> InputPlan:
        """Check a JSONL file against OpenAI's rules (any non-empty custom_id)."""
        return batch_input.validate_file(path, endpoint=endpoint, provider=NAME)

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD at the batch rate (about half the synchronous one); None if unpriced."""
        return price_of(model, tokens_in, tokens_out, batch=True)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ClientSession]:
        """Clients for one poll cycle, closed at its end."""
        async with Clients() as clients:
            yield ClientSession(clients, poll_batch, reconcile)

    def owns(self, exc: BaseException) -> bool:
        """True for an exception of the openai SDK (checked without importing it)."""
        return type(exc).__module__.split(".")[0] == "openai"


#: What the registry (`core.providers.get_provider("openai")`) hands out.
PROVIDER: BatchProvider = OpenAIBatches()
