"""Polling a Message Batch and streaming its results into the store.

`poll_batch` claims a due batch (`leases.poll_claim`), retrieves it and, once its
processing_status is `ended`, `ingest` streams `messages.batches.results` (JSONL in any
order, keyed by custom_id) in idempotent chunks, then settles the lines no result names
(`missing`). What each result makes of its job:

- `succeeded` → succeeded, the message as its result, its usage, the batch price;
- `errored` → failed, the error type as its kind (`invalid_request_error` is permanent:
  resubmit leaves it out; `api_error`, `overloaded_error` are worth sending again);
- `canceled` → cancelled; `expired` → failed, kind `expired`.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import batch_results
from batchdash.core.batch_records import ItemResult
from batchdash.core.batches import record_imported_lines
from batchdash.core.db.ports import Store
from batchdash.core.models import Batch, ItemOutcome, JobStatus, dumps
from batchdash.core.providers import _anthropic, _openai
from batchdash.core.providers.anthropic_remote import call, pause, save_remote
from batchdash.core.providers.chunks import write_in_chunks
from batchdash.core.providers.leases import poll_claim

#: Attempts at streaming the results; every attempt restarts them (ingest is idempotent).
DOWNLOAD_ATTEMPTS = 3

_NOT_RUN = {
    "canceled": (ItemOutcome.CANCELLED, "canceled: the batch was canceled before it ran"),
    "expired": (ItemOutcome.EXPIRED, "expired: the batch ended (24 h) before it ran"),
}


async def poll_batch(db: Store, client: Any, batch: Batch) -> bool | None:
    """Claim a due batch, poll it and ingest it once ended; None if another poller has it.

    True when it was ingested now.
    """
    async with poll_claim(db, batch) as claimed:
        return None if claimed is None else await _refresh(db, client, claimed)


async def _refresh(db: Store, client: Any, batch: Batch) -> bool:
    if batch.remote_id is not None and batch.raw_status not in batch_results.TERMINAL_RAW:
        await save_remote(db, batch, await call(client.messages.batches.retrieve, batch.remote_id))
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch.id))
    if batch.ingested_at is not None or batch.raw_status not in batch_results.TERMINAL_RAW:
        return False
    await ingest(db, client, batch)
    return True


async def ingest(db: Store, client: Any, batch: Batch) -> str:
    """Stream the results into the store, then settle the lines they did not name.

    Safe to run again after a crash at any point: every chunk is idempotent. A batch that
    was imported (no lines here) first gets one item per result.
    """
    if not await db.read(lambda tx: tx.items.count_batch_items(batch_id=batch.id)):
        await _load_lines(db, client, batch)
    async with db.bulk_writes():
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                await write_in_chunks(db, batch, _parsed(client, batch), list)
                break
            except Exception as exc:
                if not _anthropic.is_retryable(exc) or attempt + 1 == DOWNLOAD_ATTEMPTS:
                    raise
                await pause(exc, attempt)
    return await db.write(partial(batch_results.finish_ingest, batch=batch, now=time.time()))


async def _results(client: Any, batch: Batch) -> AsyncIterator[dict[str, Any]]:
    """The batch's results as plain dicts, streamed (memory stays flat)."""
    decoder = await call(client.messages.batches.results, batch.remote_id)
    async for record in decoder:
        yield record.model_dump(mode="json")


async def _parsed(client: Any, batch: Batch) -> AsyncIterator[batch_results.ParsedLine]:
    """Each result parsed as it arrives: a chunk then holds only what the store needs (the
    message as JSON text), not the decoded records."""
    prices = batch_results.BatchPrices(batch.model)
    async for record in _results(client, batch):
        parsed = parse_result(record, prices)
        if parsed is not None:
            yield parsed


def parse_result(
    record: dict[str, Any], prices: batch_results.BatchPrices
) -> batch_results.ParsedLine | None:
    """(item result, job status, job error kind) of one result; None without a custom_id."""
    item = _item(record, prices)
    if item is None:
        return None
    status = batch_results.job_status_of(item.outcome)
    kind = None if status == JobStatus.SUCCEEDED else (item.error_code or str(item.outcome))
    return item, str(status), kind


def _item(record: dict[str, Any], prices: batch_results.BatchPrices) -> ItemResult | None:
    custom_id = record.get("custom_id")
    result = record.get("result")
    if not isinstance(custom_id, str) or not isinstance(result, dict):
        return None
    kind = result.get("type")
    if kind == "succeeded":
        message = result.get("message")
        message = message if isinstance(message, dict) else {}
        tokens_in, tokens_out = _openai.usage_tokens(message)
        return ItemResult(
            custom_id=custom_id,
            outcome=ItemOutcome.SUCCEEDED,
            result_json=dumps(message),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=prices.cost(message.get("model"), tokens_in, tokens_out),
        )
    if kind in _NOT_RUN:
        outcome, text = _NOT_RUN[kind]
        return ItemResult(custom_id, outcome, error_code=str(outcome), error_message=text)
    error_type, message_text = _error_of(result)
    return ItemResult(
        custom_id=custom_id,
        outcome=ItemOutcome.ERRORED,
        error_code=error_type,
        error_message=f"{error_type}: {message_text}",
    )


def _error_of(result: dict[str, Any]) -> tuple[str, str]:
    """(error type, message) of an errored result: `{"error": {"error": {type, message}}}`."""
    envelope = result.get("error")
    inner = envelope.get("error", envelope) if isinstance(envelope, dict) else None
    if not isinstance(inner, dict):
        return "errored", f"result type {result.get('type')!r} without an error"
    return str(inner.get("type") or "errored"), str(inner.get("message") or "no message")


async def _load_lines(db: Store, client: Any, batch: Batch) -> None:
    """Items and jobs of an imported batch, one per result (its requests are not offered
    by the API: the jobs' payloads stay empty, so they cannot be resubmitted)."""
    with tempfile.TemporaryDirectory(prefix="batchdash-") as tmp:
        path = Path(tmp) / "ids.jsonl"
        with path.open("w", encoding="utf-8") as out:
            async for record in _results(client, batch):
                out.write(json.dumps({"custom_id": record.get("custom_id")}) + "\n")
        await db.write(partial(record_imported_lines, batch=batch, path=path, now=time.time()))
