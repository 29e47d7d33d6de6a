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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import batches
from batchdash.core.batches import BatchError, InputPlan
from batchdash.core.config import MissingKeyError, openai_settings
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import BatchdashError, ProviderError, UnknownProviderError
from batchdash.core.liveness import pid_alive, this_host
from batchdash.core.models import Batch, BatchState
from batchdash.core.pricing import price_of
from batchdash.core.providers._openai import describe, is_retryable, new_client, retryable_status
from batchdash.core.providers.base import BatchProvider, Reconciled
from batchdash.core.remote import note_failure
from batchdash.core.retry import backoff

#: SDK retries (with its backoff, honouring retry-after) for calls that are safe to repeat.
SDK_RETRIES = 5
#: Attempts at `create` (after 429s or ambiguous failures) before giving up for this run.
CREATE_ATTEMPTS = 6
#: Attempts at uploading one input file (each after searching for the previous one).
UPLOAD_ATTEMPTS = 6
#: Attempts at downloading one result file; every attempt restarts it (ingest is idempotent).
DOWNLOAD_ATTEMPTS = 3
#: Seconds a submit lease lasts without renewal; renewed every third of that.
LEASE_SECONDS = 60.0
#: How far before a batch's local creation `reconcile` looks in the provider's list.
RECONCILE_MARGIN = 3600.0

_TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


#: The name batches of this provider carry in the store (`batches.provider`).
NAME = "openai"


@contextlib.asynccontextmanager
async def connect(base_url: str | None = None) -> AsyncIterator[Any]:
    """An AsyncOpenAI client for `base_url` (default: the configured one), closed on exit."""
    client = new_client(retries=SDK_RETRIES, base_url=base_url)
    try:
        yield client
    finally:
        await client.close()


class Clients:
    """One client per endpoint, opened on first use and closed together.

    Every call on a batch goes to the endpoint it was submitted to (`Batch.base_url`);
    batches recorded before endpoints were stored use the configured one.
    """

    def __init__(self) -> None:
        self.default_url = openai_settings()[0]
        self._open: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()

    async def for_batch(self, batch: Batch) -> Any:
        """The client for this batch's endpoint."""
        url = batch.base_url or self.default_url
        if url not in self._open:
            self._open[url] = await self._stack.enter_async_context(connect(url))
        return self._open[url]

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def is_permanent(exc: BaseException) -> bool:
    """True for a refusal that retrying cannot change (bad key, unknown batch, bad request).

    408, 409 and 429 are the provider saying "later"; 5xx and network errors are transient.
    """
    if isinstance(exc, BatchdashError):
        return isinstance(exc, (MissingKeyError, UnknownProviderError))
    import openai

    if isinstance(exc, openai.APIStatusError):
        return not retryable_status(exc.status_code)
    return False


def _backoff(attempt: int) -> float:
    """Delay of our own retry loops (upload, create, download)."""
    return backoff(attempt, 0.2, 10.0)


# --------------------------------------------------------------------------- remote fields


def remote_fields(remote: Any, local_total: int = 0) -> dict[str, Any]:
    """Columns of a local batch from the provider's batch object (raw status verbatim)."""
    data = remote if isinstance(remote, dict) else remote.model_dump()
    raw = data.get("status")
    errors = data.get("errors") or {}
    counts = data.get("request_counts") or {}
    fields: dict[str, Any] = {
        "remote_id": data.get("id"),
        "raw_status": raw,
        "state": batches.normalize_state(raw),
        "input_file_id": data.get("input_file_id") or None,
        # An empty string means "no file" on some batches: never fetch /files//content.
        "output_file_id": data.get("output_file_id") or None,
        "error_file_id": data.get("error_file_id") or None,
        "errors": errors.get("data") or None,
        "completed": counts.get("completed") or 0,
        "failed": counts.get("failed") or 0,
        "total": max(local_total, counts.get("total") or 0),
        "remote_created_at": data.get("created_at"),
        **{name: data.get(name) for name in _TIMESTAMPS},
    }
    for name in ("model", "endpoint"):
        if data.get(name):
            fields[name] = data[name]
    return fields


# --------------------------------------------------------------------------- leases


def _owner() -> str:
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _lease_free(lease: tuple[str, float] | None, now: float) -> bool:
    """True when nobody alive holds the lease (expired, or its process is gone)."""
    if lease is None or lease[1] < now:
        return True
    host, pid, _ = lease[0].split(":", 2)
    return host == this_host() and pid.isdigit() and not pid_alive(int(pid))


def _take_lease(tx: Tx, batch_id: int, owner: str, now: float) -> bool:
    """Take the submit lease of a still-submitting batch if nobody alive holds it."""
    batch = tx.batches.get_batch(batch_id)
    if batch.state != BatchState.SUBMITTING:
        return False
    lease = tx.batches.get_submit_lease(batch_id)
    if lease is not None and lease[0] != owner and not _lease_free(lease, now):
        return False
    tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)
    return True


def _confirm_lease(tx: Tx, batch_id: int, owner: str, now: float) -> None:
    """Extend our lease; BatchError if another process took over the submission."""
    lease = tx.batches.get_submit_lease(batch_id)
    if lease is None or lease[0] != owner:
        raise BatchError(f"batch {batch_id}: another process took over its submission")
    tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)


@contextlib.asynccontextmanager
async def _renewing(
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


def _holding(db: Store, batch_id: int, owner: str) -> contextlib.AbstractAsyncContextManager[None]:
    """Hold the submit lease of a batch while the body runs."""

    def renew(tx: Tx) -> None:
        _confirm_lease(tx, batch_id, owner, time.time())

    return _renewing(
        db, renew, lambda tx: tx.batches.drop_submit_lease(batch_id=batch_id, owner=owner)
    )


# --------------------------------------------------------------------------- submission


async def submit_file(
    db: Store,
    path: Path,
    *,
    queue: str,
    endpoint: str | None = None,
    metadata: dict[str, str] | None = None,
    max_lines: int = batches.MAX_LINES,
    max_bytes: int = batches.MAX_BYTES,
) -> list[int]:
    """Validate, record, upload and create; returns the local batch ids (one per shard).

    Nothing is recorded or uploaded when the file is invalid (InputError lists the lines)
    or no key is configured. After the intent is recorded, an error leaves `submitting`
    batches that `reconcile` (or the next poll) completes without submitting twice.
    """
    user_meta = dict(metadata or {})
    batches.check_metadata({**user_meta, batches.SUBMIT_KEY_META: "", batches.SHARD_META: ""})
    plan = batches.validate_file(path, endpoint=endpoint, max_lines=max_lines, max_bytes=max_bytes)
    base_url, _ = openai_settings()
    owner = _owner()

    def record(tx: Tx) -> list[int]:
        now = time.time()
        ids = batches.record_intent(
            tx, plan, queue=queue, metadata=user_meta, now=now, base_url=base_url, provider=NAME
        )
        for batch_id in ids:
            tx.batches.put_submit_lease(batch_id, owner, now + LEASE_SECONDS)
        return ids

    ids = await db.write(record)
    async with connect(base_url) as client:
        for batch_id in ids:
            await _send(db, client, batch_id, owner)
    return ids


async def _send(db: Store, client: Any, batch_id: int, owner: str) -> None:
    """Upload (unless done) and create one batch we hold the lease of."""
    async with _holding(db, batch_id, owner):
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
        if batch.input_file_id is None:
            batch.input_file_id = await _upload(db, client, batch)
            await _record_upload(db, batch.id, batch.input_file_id, "uploaded")
        await _create(db, client, batch, owner)


async def _record_upload(db: Store, batch_id: int, file_id: str, how: str) -> None:
    """Keep the input file's id with the intent before create, so no retry uploads again."""
    await db.write(
        lambda tx: tx.batches.update_batch(
            batch_id=batch_id,
            fields={"input_file_id": file_id},
            now=time.time(),
            event=("batch_uploaded", f"{file_id}: {how}"),
        )
    )


def upload_name(batch: Batch) -> str:
    """The input file's name at the provider. It carries the submit key, so an upload whose
    answer was lost (or whose uploader died) is found again instead of repeated."""
    return f"batchdash-{batch.submit_key}.jsonl"


async def _upload(db: Store, client: Any, batch: Batch) -> str:
    """Write the batch's lines from the store to a temp file and upload it once.

    Not retried blindly: after a failure that may hide a stored file (5xx, network), the
    account's files are searched for this batch's upload before trying again.
    """
    import openai

    name = upload_name(batch)
    uploader = client.with_options(max_retries=0)
    with tempfile.TemporaryDirectory(prefix="batchdash-") as tmp:
        path = Path(tmp) / name
        await db.read(partial(_write_upload, batch_id=batch.id, path=path))
        attempt = 0
        while True:
            try:
                with path.open("rb") as handle:
                    uploaded = await uploader.files.create(file=(name, handle), purpose="batch")
                return str(uploaded.id)
            except Exception as exc:
                if not is_retryable(exc) or attempt + 1 == UPLOAD_ATTEMPTS:
                    raise
                ambiguous = not isinstance(exc, openai.RateLimitError)
            found = await find_upload(client, batch) if ambiguous else None
            if found is not None:
                return found
            await asyncio.sleep(_backoff(attempt))
            attempt += 1


async def find_upload(client: Any, batch: Batch) -> str | None:
    """The input file an earlier attempt uploaded for this batch, if any.

    Should two attempts both have landed, the oldest is kept and the others, which no
    batch uses, are deleted. Pages newest first back to a margin before the intent.
    """
    matches = []
    async for stored in client.files.list(purpose="batch", order="desc"):
        if stored.filename == upload_name(batch):
            matches.append(stored.id)
        if stored.created_at < batch.created_at - RECONCILE_MARGIN:
            break
    if not matches:
        return None
    for orphan in matches[:-1]:
        await _delete_file(client, orphan)
    return str(matches[-1])


async def _delete_file(client: Any, file_id: str) -> None:
    """Delete an uploaded file no batch uses; a failure only leaves it behind."""
    import openai

    with contextlib.suppress(openai.APIError):
        await client.files.delete(file_id)


def _write_upload(tx: Tx, batch_id: int, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for custom_id, payload in tx.items.batch_upload_rows(batch_id):
            out.write(batches.request_line(custom_id, payload))


async def _create(db: Store, client: Any, batch: Batch, owner: str) -> None:
    """Create the remote batch; after an ambiguous failure, look for it before retrying."""
    import openai

    meta = {**(batch.metadata or {}), batches.SUBMIT_KEY_META: str(batch.submit_key)}
    creator = client.with_options(max_retries=0)
    note = "created"
    for attempt in range(CREATE_ATTEMPTS):
        await db.write(partial(_confirm_lease, batch_id=batch.id, owner=owner, now=time.time()))
        try:
            remote = await creator.batches.create(
                input_file_id=batch.input_file_id,
                endpoint=batch.endpoint,
                completion_window="24h",
                metadata=meta,
            )
            break
        except openai.APIStatusError as exc:
            if not retryable_status(exc.status_code):
                await _reject(db, batch, describe(exc), exc.code)
                await _delete_file(client, str(batch.input_file_id))  # no batch will use it
                raise ProviderError(
                    f"batch {batch.id}: provider refused it: {describe(exc)}"
                ) from exc
            error: BaseException = exc
        except openai.APIConnectionError as exc:
            error = exc
        if isinstance(error, openai.RateLimitError):
            found = None  # a 429 is a clean refusal: nothing was created
        else:
            found = await find_by_submit_key(client, str(batch.submit_key), batch.created_at)
        if found is not None:
            remote, note = found, f"found after an ambiguous create error ({describe(error)})"
            break
        await note_failure(db, batch.id, describe(error))
        if attempt + 1 == CREATE_ATTEMPTS:
            raise ProviderError(f"batch {batch.id}: create keeps failing: {describe(error)}")
        await asyncio.sleep(_backoff(attempt))
    await _record(db, batch, remote, event=("batch_created", f"{remote.id}: {note}"))


async def _reject(db: Store, batch: Batch, message: str, code: str | None) -> None:
    """The provider refused to create the batch: it failed, and so did its lines."""

    def run(tx: Tx) -> None:
        now = time.time()
        errors = [{"code": code or "create_rejected", "message": message, "line": None}]
        fields = {"state": BatchState.FAILED, "errors": errors, "poll_error": message}
        tx.batches.update_batch(batch.id, fields, now, ("batch_rejected", message))
        batches.finish_ingest(tx, tx.batches.get_batch(batch.id), now)

    await db.write(run)


async def find_by_submit_key(client: Any, submit_key: str, since: float) -> Any | None:
    """The provider's batch carrying our submit key in its metadata, if it exists.

    Pages through the list (newest first) back to a margin before `since`.
    """
    async for remote in client.batches.list(limit=100):
        if (remote.metadata or {}).get(batches.SUBMIT_KEY_META) == submit_key:
            return remote
        if remote.created_at < since - RECONCILE_MARGIN:
            return None
    return None


# --------------------------------------------------------------------------- reconcile


async def reconcile(db: Store, clients: Clients | None = None) -> list[Reconciled]:
    """Finish every `submitting` batch nobody alive is submitting.

    Adopts the remote batch found by its submit key, or else uploads and creates it, at
    the batch's own endpoint. Failures read "error: …".
    """
    stuck = [
        b for b in await db.read(lambda tx: tx.batches.submitting_batches()) if b.provider == NAME
    ]
    if not stuck:
        return []
    if clients is None:
        async with Clients() as fresh:
            return await reconcile(db, fresh)
    done = []
    for batch in stuck:
        owner = _owner()
        taken = await db.write(
            partial(_take_lease, batch_id=batch.id, owner=owner, now=time.time())
        )
        if not taken:
            continue  # a live process is submitting it right now
        try:
            client = await clients.for_batch(batch)
            done.append(Reconciled(batch.id, await _reconcile_one(db, client, batch, owner)))
        except Exception as exc:  # recorded on the batch; the others still get reconciled
            permanent = is_permanent(exc)
            await note_failure(db, batch.id, describe(exc), permanent=permanent)
            done.append(Reconciled(batch.id, f"error: {describe(exc)}", permanent))
    return done


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
            await _record_upload(db, batch.id, file_id, "found after an interrupted upload")
    if found is None:
        await _send(db, client, batch.id, owner)
        return "submitted"
    fields = remote_fields(found, batch.total)
    now = time.time()

    def adopt(tx: Tx) -> None:
        tx.batches.update_batch(batch.id, {}, now, ("batch_reconciled", str(found.id)))
        tx.batches.record_remote(batch.id, fields, now)
        tx.batches.drop_submit_lease(batch.id, owner)

    await db.write(adopt)
    return f"found {found.id}"


# --------------------------------------------------------------------------- polling


async def poll_batch(db: Store, client: Any, batch: Batch) -> bool | None:
    """Claim a due batch, poll it and ingest it if finished; None if another poller has it.

    The claim is a compare-and-set on the batch row and hands back the row as it is now,
    so the work never starts from a stale read; the lease is renewed while it runs (an
    ingestion can take minutes) and released at the end. True when it was ingested now.
    """
    owner = _owner()
    now = time.time()
    holder = batch.poll_owner
    lease = None if holder is None else (holder, batch.poll_lease_until or 0.0)
    claimed = await db.write(
        lambda tx: tx.batches.claim_batch_poll(
            batch_id=batch.id,
            owner=owner,
            until=now + LEASE_SECONDS,
            now=now,
            dead_owner=holder if lease is not None and _lease_free(lease, now) else None,
        )
    )
    if claimed is None:
        return None

    def renew(tx: Tx) -> None:
        tx.batches.renew_batch_poll(batch.id, owner, time.time() + LEASE_SECONDS)

    def release(tx: Tx) -> None:
        tx.batches.release_batch_poll(batch.id, owner)

    async with _renewing(db, renew, release):
        return await _refresh(db, client, claimed)


async def _refresh(db: Store, client: Any, batch: Batch) -> bool:
    """Poll one batch we hold the poll lease of, and ingest it once finished."""
    if batch.remote_id is not None and batch.raw_status not in batches.TERMINAL_RAW:
        await _record(db, batch, await client.batches.retrieve(batch.remote_id))
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch.id))
    if batch.ingested_at is not None or (
        batch.remote_id is not None and batch.raw_status not in batches.TERMINAL_RAW
    ):
        return False
    await ingest(db, client, batch)
    return True


async def ingest(db: Store, client: Any, batch: Batch) -> str:
    """Stream the result files into the store, then reconcile against the input.

    Safe to run again after a crash at any point: every chunk is idempotent.
    """
    if batch.input_file_id and not await db.read(
        lambda tx: tx.items.count_batch_items(batch_id=batch.id)
    ):
        await _load_input(db, client, batch)
    async with db.bulk_writes():
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                await _ingest_file(db, client, batch, file_id)
    return await db.write(partial(batches.finish_ingest, batch=batch, now=time.time()))


async def _ingest_file(db: Store, client: Any, batch: Batch, file_id: str) -> None:
    """Download one result file line by line, writing chunks as they arrive; retried."""
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            async with client.with_streaming_response.files.content(file_id) as response:
                await _stream_chunks(db, batch, response)
            return
        except Exception as exc:
            if not is_retryable(exc) or attempt + 1 == DOWNLOAD_ATTEMPTS:
                raise
            await asyncio.sleep(_backoff(attempt))


async def _stream_chunks(db: Store, batch: Batch, response: Any) -> None:
    """Parse each chunk here while the database thread writes the previous one.

    One write in flight at most, so memory holds about two chunks whatever the file size;
    SQLite releases the GIL, so parsing and writing overlap on two cores.
    """
    writing: asyncio.Task[None] | None = None
    chunk: list[str] = []
    try:
        async for line in response.iter_lines():
            if line:
                chunk.append(line)
            if len(chunk) >= batches.INGEST_CHUNK:
                parsed, chunk = batches.parse_chunk(chunk, batch.model), []
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_write_chunk(db, batch, parsed))
        parsed = batches.parse_chunk(chunk, batch.model)
    finally:
        if writing is not None:
            await writing  # never leave a transaction running behind a failed download
    await _write_chunk(db, batch, parsed)


async def _write_chunk(db: Store, batch: Batch, parsed: batches.ParsedChunk) -> None:
    if parsed:
        await db.write(
            lambda tx: tx.items.apply_item_results(
                batch_id=batch.id, results=parsed, now=time.time()
            )
        )


async def _load_input(db: Store, client: Any, batch: Batch) -> None:
    """Items and jobs of a batch submitted elsewhere, from its input file (one transaction)."""
    with tempfile.TemporaryDirectory(prefix="batchdash-") as tmp:
        path = Path(tmp) / "input.jsonl"
        async with client.with_streaming_response.files.content(batch.input_file_id) as response:
            with path.open("wb") as out:
                async for part in response.iter_bytes():
                    out.write(part)
        await db.write(
            partial(batches.record_imported_lines, batch=batch, path=path, now=time.time())
        )


# --------------------------------------------------------------------------- actions


async def check_model(model: str) -> None:
    """ProviderError unless the provider lists this model (`submit --model-check`)."""
    async with connect() as client:
        async for known in client.models.list():
            if known.id == model:
                return
    raise ProviderError(f"model {model!r} is not offered by {openai_settings()[0]}")


async def cancel_batch(db: Store, batch_id: int) -> None:
    """Ask the provider to cancel; the batch shows `cancelling` until it is `cancelled`."""
    import openai

    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    if batch.state == BatchState.SUBMITTING or batch.remote_id is None:
        raise BatchError(
            f"batch {batch.id} is still being submitted; run `batchdash batches reconcile` first"
        )
    if not batch.active:
        raise BatchError(f"batch {batch.id} is already {batch.state}")
    async with connect(batch.base_url) as client:
        try:
            remote = await client.batches.cancel(batch.remote_id)
        except openai.APIStatusError as exc:
            if retryable_status(exc.status_code):
                raise
            remote = await client.batches.retrieve(batch.remote_id)
            await _record(db, batch, remote)
            raise ProviderError(
                f"batch {batch.id}: provider refused cancel: {describe(exc)}"
            ) from exc
    await _record(db, batch, remote, event=("batch_cancel", "requested by user"))


async def _record(
    db: Store, batch: Batch, remote: Any, *, event: tuple[str, str] | None = None
) -> None:
    """Store the provider's view of a batch, with the event that led to it, in one write."""
    fields = remote_fields(remote, batch.total)
    now = time.time()

    def run(tx: Tx) -> None:
        if event is not None:
            tx.batches.update_batch(batch.id, {}, now, event)
        tx.batches.record_remote(batch.id, fields, now)

    await db.write(run)


async def resubmit_batch(db: Store, batch_id: int, *, include_permanent: bool = False) -> int:
    """Send the failed, expired, cancelled and missing lines again as a child batch.

    Lines whose error will not pass on retry go too only with `include_permanent`. The
    child goes to the parent's endpoint. Returns the child's local id.
    """
    openai_settings()
    owner = _owner()

    def record(tx: Tx) -> int:
        now = time.time()
        child = batches.record_resubmit(tx, batch_id, now, include_permanent=include_permanent)
        tx.batches.put_submit_lease(child, owner, now + LEASE_SECONDS)
        return child

    child = await db.write(record)
    child_batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=child))
    async with connect(child_batch.base_url) as client:
        await _send(db, client, child, owner)
    return child


async def import_batches(db: Store, *, queue: str = "imported") -> list[int]:
    """Adopt every batch of the account not tracked yet (paged list); their local ids.

    A batch carrying one of our submit keys is left to `reconcile`, which links it to the
    local record it belongs to.
    """
    known = await db.read(lambda tx: tx.batches.known_remote_ids())
    ours = {b.submit_key for b in await db.read(lambda tx: tx.batches.submitting_batches())}
    adopted = []
    base_url, _ = openai_settings()
    async with connect(base_url) as client:
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
                        base_url=base_url,
                        provider=NAME,
                    )
                )
            )
    return adopted


# --------------------------------------------------------------------------- the provider


class _Session:
    """One poll cycle's clients (one per endpoint), for `poll` and `reconcile`."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    async def poll(self, db: Store, batch: Batch) -> bool | None:
        """Retrieve a due batch and stream its results in once it is finished."""
        return await poll_batch(db, await self.clients.for_batch(batch), batch)

    async def reconcile(self, db: Store) -> list[Reconciled]:
        """Finish this provider's submissions whose submitter died."""
        return await reconcile(db, self.clients)


class OpenAIBatches:
    """The OpenAI Batch API (and compatible endpoints) as a `BatchProvider`.

    The actions are this module's functions; `Clients` serves a poll cycle's session.
    """

    name = NAME
    submit_file = staticmethod(submit_file)
    resubmit = staticmethod(resubmit_batch)
    cancel = staticmethod(cancel_batch)
    import_batches = staticmethod(import_batches)
    check_model = staticmethod(check_model)
    describe = staticmethod(describe)
    is_permanent = staticmethod(is_permanent)

    def check_ready(self) -> None:
        """MissingKeyError (or ConfigError) unless a key is configured."""
        openai_settings()

    def validate(self, path: Path, *, endpoint: str | None = None) -> InputPlan:
        """Check a JSONL file against OpenAI's rules (any non-empty custom_id)."""
        return batches.validate_file(path, endpoint=endpoint, provider=NAME)

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        """USD at the batch rate (about half the synchronous one); None if unpriced."""
        return price_of(model, tokens_in, tokens_out, batch=True)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[_Session]:
        """Clients for one poll cycle, closed at its end."""
        async with Clients() as clients:
            yield _Session(clients)

    def owns(self, exc: BaseException) -> bool:
        """True for an exception of the openai SDK (checked without importing it)."""
        return type(exc).__module__.split(".")[0] == "openai"


#: What the registry (`core.providers.get_provider("openai")`) hands out.
PROVIDER: BatchProvider = OpenAIBatches()
