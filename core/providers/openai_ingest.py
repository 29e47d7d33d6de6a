"""Polling an OpenAI batch and streaming its result files into the store.

`poll_batch` claims a due batch (a compare-and-set poll lease), retrieves it and, once the
provider is done with it, `ingest` streams the output and error files in idempotent chunks
and settles the lines nobody mentioned.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import batch_results
from batchdash.core.batches import record_imported_lines
from batchdash.core.db.ports import Store, Tx
from batchdash.core.models import Batch
from batchdash.core.providers._openai import is_retryable
from batchdash.core.providers.leases import LEASE_SECONDS, lease_free, new_owner, renewing
from batchdash.core.providers.openai_remote import retry_delay, save_remote

#: Attempts at downloading one result file; every attempt restarts it (ingest is idempotent).
DOWNLOAD_ATTEMPTS = 3


async def poll_batch(db: Store, client: Any, batch: Batch) -> bool | None:
    """Claim a due batch, poll it and ingest it if finished; None if another poller has it.

    The claim is a compare-and-set on the batch row and hands back the row as it is now,
    so the work never starts from a stale read; the lease is renewed while it runs (an
    ingestion can take minutes) and released at the end. True when it was ingested now.
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
        return None

    def renew(tx: Tx) -> None:
        tx.batches.renew_batch_poll(batch.id, owner, time.time() + LEASE_SECONDS)

    def release(tx: Tx) -> None:
        tx.batches.release_batch_poll(batch.id, owner)

    async with renewing(db, renew, release):
        return await _refresh(db, client, claimed)


async def _refresh(db: Store, client: Any, batch: Batch) -> bool:
    """Poll one batch we hold the poll lease of, and ingest it once finished."""
    if batch.remote_id is not None and batch.raw_status not in batch_results.TERMINAL_RAW:
        await save_remote(db, batch, await client.batches.retrieve(batch.remote_id))
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch.id))
    if batch.ingested_at is not None or (
        batch.remote_id is not None and batch.raw_status not in batch_results.TERMINAL_RAW
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
    return await db.write(partial(batch_results.finish_ingest, batch=batch, now=time.time()))


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
            await asyncio.sleep(retry_delay(attempt))


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
            if len(chunk) >= batch_results.INGEST_CHUNK:
                parsed, chunk = batch_results.parse_chunk(chunk, batch.model), []
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_write_chunk(db, batch, parsed))
        parsed = batch_results.parse_chunk(chunk, batch.model)
    finally:
        if writing is not None:
            await writing  # never leave a transaction running behind a failed download
    await _write_chunk(db, batch, parsed)


async def _write_chunk(db: Store, batch: Batch, parsed: batch_results.ParsedChunk) -> None:
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
        await db.write(partial(record_imported_lines, batch=batch, path=path, now=time.time()))
