"""Sending one recorded batch to the OpenAI Batch API: upload its input once, create it once.

Neither call is retried blindly. After a failure that may hide a stored upload or an
accepted batch (a 5xx, the network), the provider's lists are searched for this batch's
submit key before trying again; a 429 is a clean refusal and simply retried. The submit
lease is held throughout, so a process that takes over never sends the same batch twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import IO, Any

from batchdash.core.batch_input import request_line
from batchdash.core.batch_results import reject_batch
from batchdash.core.batches import SUBMIT_KEY_META
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import ProviderError
from batchdash.core.models import Batch
from batchdash.core.providers._openai import describe, is_retryable
from batchdash.core.providers.base import UploadProgress
from batchdash.core.providers.leases import confirm_lease, holding
from batchdash.core.providers.openai_remote import retry_delay, save_remote
from batchdash.core.remote import note_failure
from batchdash.core.retry import retryable_status

#: Attempts at `create` (after 429s or ambiguous failures) before giving up for this run.
CREATE_ATTEMPTS = 6
#: Attempts at uploading one input file (each after searching for the previous one).
UPLOAD_ATTEMPTS = 6
#: How far before a batch's local creation `reconcile` looks in the provider's list.
RECONCILE_MARGIN = 3600.0


async def send(
    db: Store, client: Any, batch_id: int, owner: str, on_upload: UploadProgress | None = None
) -> None:
    """Upload (unless done) and create one batch we hold the lease of.

    `on_upload(sent, size)`, if given, follows the upload.
    """
    async with holding(db, batch_id, owner):
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
        if batch.input_file_id is None:
            batch.input_file_id = await _upload(db, client, batch, on_upload)
            await record_upload(db, batch.id, batch.input_file_id, "uploaded")
        await _create(db, client, batch, owner)


async def record_upload(db: Store, batch_id: int, file_id: str, how: str) -> None:
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


async def _upload(
    db: Store, client: Any, batch: Batch, on_upload: UploadProgress | None = None
) -> str:
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
                    body = handle if on_upload is None else _Reporting(handle, on_upload)
                    uploaded = await uploader.files.create(file=(name, body), purpose="batch")
                return str(uploaded.id)
            except Exception as exc:
                if not is_retryable(exc) or attempt + 1 == UPLOAD_ATTEMPTS:
                    raise
                ambiguous = not isinstance(exc, openai.RateLimitError)
            found = await find_upload(client, batch) if ambiguous else None
            if found is not None:
                return found
            await asyncio.sleep(retry_delay(attempt))
            attempt += 1


class _Reporting:
    """A binary file that tells `on_upload(sent, size)` as the HTTP client reads it.

    Only what the client uses is offered: `fileno` (so the request has a Content-Length),
    `seek` and `tell`; a seek back to the start starts the count again.
    """

    def __init__(self, handle: IO[bytes], on_upload: UploadProgress) -> None:
        self._handle = handle
        self._on_upload = on_upload
        self._size = os.fstat(handle.fileno()).st_size
        on_upload(0, self._size)

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._on_upload(self._handle.tell(), self._size)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:
        return self._handle.fileno()


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
            out.write(request_line(custom_id, payload))


async def _create(db: Store, client: Any, batch: Batch, owner: str) -> None:
    """Create the remote batch; after an ambiguous failure, look for it before retrying."""
    import openai

    meta = {**(batch.metadata or {}), SUBMIT_KEY_META: str(batch.submit_key)}
    creator = client.with_options(max_retries=0)
    note = "created"
    for attempt in range(CREATE_ATTEMPTS):
        await db.write(partial(confirm_lease, batch_id=batch.id, owner=owner, now=time.time()))
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
                await db.write(
                    partial(
                        reject_batch,
                        batch_id=batch.id,
                        message=describe(exc),
                        code=exc.code,
                        now=time.time(),
                    )
                )
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
        await asyncio.sleep(retry_delay(attempt))
    await save_remote(db, batch, remote, event=("batch_created", f"{remote.id}: {note}"))


async def find_by_submit_key(client: Any, submit_key: str, since: float) -> Any | None:
    """The provider's batch carrying our submit key in its metadata, if it exists.

    Pages through the list (newest first) back to a margin before `since`.
    """
    async for remote in client.batches.list(limit=100):
        if (remote.metadata or {}).get(SUBMIT_KEY_META) == submit_key:
            return remote
        if remote.created_at < since - RECONCILE_MARGIN:
            return None
    return None
