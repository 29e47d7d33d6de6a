"""The Message Batches API's side of a batch: clients, retried calls, its fields in our columns.

Every idempotent call (retrieve, list, cancel, delete, results) goes through `call`: our
one backoff (`core.retry`), replaced by the provider's `retry-after` when it sends one,
on 408/409/429/5xx/529 and network errors. The SDK's own retries are off everywhere, so
`create` (which carries no idempotency key) is never repeated behind our back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from batchdash.core.batch_results import normalize_state
from batchdash.core.config import MissingKeyError
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import Endpoint
from batchdash.core.errors import BatchdashError, UnknownProviderError
from batchdash.core.models import Batch, BatchState
from batchdash.core.providers import _anthropic, clients
from batchdash.core.retry import backoff, retryable_status

#: Attempts of one idempotent call before its failure is recorded on the batch.
CALL_ATTEMPTS = 6
#: Batches per page when listing the account's batches (the API allows 1-1000).
PAGE_SIZE = 100

T = TypeVar("T")


@contextlib.asynccontextmanager
async def connect(endpoint: Endpoint | None = None) -> AsyncIterator[Any]:
    """An AsyncAnthropic for `endpoint` (default: the unnamed one), closed on exit."""
    client = _anthropic.new_client(retries=0, endpoint=endpoint)
    try:
        yield client
    finally:
        await client.close()


class Clients(clients.Clients):
    """One Anthropic client per endpoint (see `clients.Clients`)."""

    def __init__(self) -> None:
        super().__init__(connect)


def retry_delay(attempt: int) -> float:
    """Delay of our own retry loops when the provider did not say how long to wait."""
    return backoff(attempt, 0.2, 10.0)


async def pause(exc: BaseException, attempt: int) -> None:
    """Wait before the next attempt: the provider's retry-after, else our backoff."""
    hint = _anthropic.wait_hint(exc)
    await asyncio.sleep(retry_delay(attempt) if hint is None else hint)


async def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run an idempotent SDK call, retrying what `_anthropic.is_retryable` allows."""
    for attempt in range(CALL_ATTEMPTS):
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not _anthropic.is_retryable(exc) or attempt + 1 == CALL_ATTEMPTS:
                raise
            await pause(exc, attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


async def list_batches(client: Any) -> AsyncIterator[Any]:
    """The account's batches, newest first, page by page (`after_id` cursor)."""
    after: dict[str, str] = {}
    while True:
        page = await call(client.messages.batches.list, limit=PAGE_SIZE, **after)
        for remote in page.data:
            yield remote
        if not page.has_more or not page.data:
            return
        after = {"after_id": page.last_id}


def is_permanent(exc: BaseException) -> bool:
    """True for a refusal that retrying cannot change (bad key, unknown batch, bad request)."""
    if isinstance(exc, BatchdashError):
        return isinstance(exc, (MissingKeyError, UnknownProviderError))
    if not _anthropic.owns(exc):
        return False
    status = _anthropic.status_of(exc)
    return status is not None and not retryable_status(status)


def epoch(value: Any) -> float | None:
    """A provider timestamp (datetime or RFC 3339 text) as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return float(value.timestamp())


def remote_fields(remote: Any, local_total: int = 0) -> dict[str, Any]:
    """Columns of a local batch from the provider's batch object (raw status verbatim).

    `ended` after a cancel is `cancelled`; otherwise the results decide (succeeded or
    partial). Request counts map onto completed (succeeded) and failed (errored, expired,
    canceled); per-outcome counts come from the results once ingested.
    """
    data = remote if isinstance(remote, dict) else remote.model_dump()
    raw = data.get("processing_status")
    counts = data.get("request_counts") or {}
    cancelled = raw == "ended" and data.get("cancel_initiated_at") is not None
    ended_at = epoch(data.get("ended_at"))
    failed = sum(counts.get(k) or 0 for k in ("errored", "expired", "canceled"))
    return {
        "remote_id": data.get("id"),
        "raw_status": raw,
        "state": BatchState.CANCELLED if cancelled else normalize_state(raw),
        "completed": counts.get("succeeded") or 0,
        "failed": failed,
        "total": max(local_total, sum(v or 0 for v in counts.values())),
        "remote_created_at": epoch(data.get("created_at")),
        "expires_at": epoch(data.get("expires_at")),
        "cancelling_at": epoch(data.get("cancel_initiated_at")),
        "cancelled_at": ended_at if cancelled else None,
        "completed_at": None if cancelled else ended_at,
    }


def request_count(remote: Any) -> int:
    """How many requests a remote batch holds (the sum of its request counts)."""
    counts = remote.request_counts.model_dump()
    return sum(int(n or 0) for n in counts.values())


async def save_remote(
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
