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
from batchdash.core.db.ports import Store
from batchdash.core.models import Batch
from batchdash.core.providers._openai import is_retryable
from batchdash.core.providers.chunks import write_in_chunks
from batchdash.core.providers.leases import poll_claim
from batchdash.core.providers.openai_remote import retry_delay, save_remote

#: Attempts at downloading one result file; every attempt restarts it (ingest is idempotent).
DOWNLOAD_ATTEMPTS = 3


async def poll_batch(db: Store, client: Any, batch: Batch) -> bool | None:
    """Claim a due batch, poll it and ingest it if finished; None if another poller has it.

    True when it was ingested now (see `leases.poll_claim` for the claim).
    """
    async with poll_claim(db, batch) as claimed:
        return None if claimed is None else await _refresh(db, client, claimed)


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
                await write_in_chunks(
                    db,
                    batch,
                    response.iter_lines(),
                    partial(batch_results.parse_chunk, model=batch.model),
                )
            return
        except Exception as exc:
            if not is_retryable(exc) or attempt + 1 == DOWNLOAD_ATTEMPTS:
                raise
            await asyncio.sleep(retry_delay(attempt))


async def _load_input(db: Store, client: Any, batch: Batch) -> None:
    """Items and jobs of a batch submitted elsewhere, from its input file (one transaction)."""
    with tempfile.TemporaryDirectory(prefix="batchdash-") as tmp:
        path = Path(tmp) / "input.jsonl"
        async with client.with_streaming_response.files.content(batch.input_file_id) as response:
            with path.open("wb") as out:
                async for part in response.iter_bytes():
                    out.write(part)
        await db.write(partial(record_imported_lines, batch=batch, path=path, now=time.time()))
