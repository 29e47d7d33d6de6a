"""The OpenAI Batch API's side of a batch: clients per endpoint, its fields, what may be retried.

Shared by submission, polling and the user's actions in `core.providers.openai_batch`:
`connect`/`Clients` open clients for the endpoint a batch was submitted to, `remote_fields`
maps the provider's batch object onto our columns and `save_remote` stores that view.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from batchdash.core.batch_results import normalize_state
from batchdash.core.config import ConfigError
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import Endpoint
from batchdash.core.errors import BatchdashError, UnknownProviderError
from batchdash.core.models import Batch
from batchdash.core.providers import clients
from batchdash.core.providers._openai import new_client
from batchdash.core.retry import backoff, retryable_status

#: SDK retries (with its backoff, honouring retry-after) for calls that are safe to repeat.
SDK_RETRIES = 5

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


@contextlib.asynccontextmanager
async def connect(endpoint: Endpoint | None = None) -> AsyncIterator[Any]:
    """An AsyncOpenAI client for `endpoint` (default: the unnamed one), closed on exit."""
    client = new_client(retries=SDK_RETRIES, endpoint=endpoint)
    try:
        yield client
    finally:
        await client.close()


class Clients(clients.Clients):
    """One OpenAI client per endpoint (see `clients.Clients`)."""

    def __init__(self) -> None:
        super().__init__(connect)


def is_permanent(exc: BaseException) -> bool:
    """True for a refusal that retrying cannot change (bad key, unknown batch, bad request).

    408, 409 and 429 are the provider saying "later"; 5xx and network errors are transient.
    """
    if isinstance(exc, BatchdashError):
        return isinstance(exc, (ConfigError, UnknownProviderError))
    import openai

    if isinstance(exc, openai.APIStatusError):
        return not retryable_status(exc.status_code)
    return False


def retry_delay(attempt: int) -> float:
    """Delay of our own retry loops (upload, create, download)."""
    return backoff(attempt, 0.2, 10.0)


def remote_fields(remote: Any, local_total: int = 0) -> dict[str, Any]:
    """Columns of a local batch from the provider's batch object (raw status verbatim)."""
    data = remote if isinstance(remote, dict) else remote.model_dump()
    raw = data.get("status")
    errors = data.get("errors") or {}
    counts = data.get("request_counts") or {}
    fields: dict[str, Any] = {
        "remote_id": data.get("id"),
        "raw_status": raw,
        "state": normalize_state(raw),
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
