"""Writing a stream of result lines into the store in idempotent chunks, whatever the provider.

The provider hands over its result lines (text lines of a file, decoded records of a
stream) and a function parsing a chunk of them into item results; this module overlaps
the parsing of one chunk with the database write of the previous one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable
from typing import TypeVar

from batchdash.core import batch_results
from batchdash.core.db.ports import Store
from batchdash.core.models import Batch
from batchdash.core.progress import ingested

T = TypeVar("T")


async def write_in_chunks(
    db: Store,
    batch: Batch,
    lines: AsyncIterable[T],
    parse: Callable[[list[T]], batch_results.ParsedChunk],
) -> None:
    """Parse each chunk here while the database thread writes the previous one.

    One write in flight at most, so memory holds about two chunks whatever the file size;
    SQLite releases the GIL, so parsing and writing overlap on two cores.
    """
    writing: asyncio.Task[None] | None = None
    chunk: list[T] = []
    written = 0  # lines whose chunk has been written (what a progress bar shows)
    try:
        async for line in lines:
            if line:
                chunk.append(line)
            if len(chunk) >= batch_results.INGEST_CHUNK:
                parsed, size, chunk = parse(chunk), len(chunk), []
                if writing is not None:
                    await writing
                    ingested(batch, written)
                writing = asyncio.create_task(write_chunk(db, batch, parsed))
                written += size
        parsed = parse(chunk)
    finally:
        if writing is not None:
            await writing  # never leave a transaction running behind a failed download
    await write_chunk(db, batch, parsed)
    ingested(batch, written + len(chunk))


async def write_chunk(db: Store, batch: Batch, parsed: batch_results.ParsedChunk) -> None:
    """Apply one parsed chunk to the batch's items and jobs (idempotent)."""
    if parsed:
        await db.write(
            lambda tx: tx.items.apply_item_results(
                batch_id=batch.id, results=parsed, now=time.time()
            )
        )
