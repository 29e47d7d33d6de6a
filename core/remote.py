"""Remote-batch actions for the CLI and the dashboard, whatever the provider.

Each action finds the provider of the batch it acts on (its stored `provider`) or, for
new work, the one named (default `openai`), and calls it through `BatchProvider`. An
error of a provider's SDK (HTTP, network) comes out as a one-line ProviderError; a bug
keeps its traceback.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from batchdash.core import budget
from batchdash.core.actor import Actor
from batchdash.core.errors import BatchdashError, ProviderError
from batchdash.core.providers import DEFAULT_PROVIDER, get_provider, provider_for
from batchdash.core.retry import backoff

if TYPE_CHECKING:
    from batchdash.core.batch_input import InputPlan
    from batchdash.core.db.ports import Store, Tx
    from batchdash.core.providers.base import BatchProvider, Reconciled, UploadProgress

#: Backoff between polls of a batch whose provider calls keep failing.
POLL_BACKOFF_BASE = 1.0
POLL_BACKOFF_MAX = 300.0
#: Failed calls in a row after which a batch counts as unreachable even if each looked
#: transient (network, 5xx): it needs a human, and `--once` says so.
UNREACHABLE_AFTER = 3


@contextlib.contextmanager
def _speaking(provider: BatchProvider) -> Iterator[None]:
    """Turn the provider's own failures (not ours, not bugs) into one-line ProviderErrors."""
    try:
        yield
    except BatchdashError:
        raise
    except Exception as exc:
        if not provider.owns(exc):
            raise
        raise ProviderError(f"provider: {provider.describe(exc)}") from exc


def validate(
    path: Path, *, endpoint: str | None = None, provider: str = DEFAULT_PROVIDER
) -> InputPlan:
    """Check a batch input file by the rules of `provider`; InputError lists bad lines."""
    return get_provider(provider).validate(path, endpoint=endpoint)


async def check_model(model: str, *, provider: str = DEFAULT_PROVIDER) -> None:
    """ProviderError unless `provider` offers the model."""
    chosen = get_provider(provider)
    with _speaking(chosen):
        await chosen.check_model(model)


async def submit_file(
    db: Store,
    path: Path,
    *,
    queue: str,
    endpoint: str | None = None,
    endpoint_name: str | None = None,
    metadata: dict[str, str] | None = None,
    provider: str = DEFAULT_PROVIDER,
    on_upload: UploadProgress | None = None,
    tags: Sequence[str] = (),
) -> list[int]:
    """Validate, record (tagged with `tags`) and submit a file to `provider`; the local
    batch ids (BudgetError when `queue` spent its budget: nothing is uploaded).

    `endpoint` is the lines' request URL, `endpoint_name` the config file's named endpoint
    (stored on the batches). `on_upload(sent, size)` follows each upload, for a progress bar.
    """
    await budget.require_budget_left(db, queue)
    chosen = get_provider(provider)
    with _speaking(chosen):
        return await chosen.submit_file(
            db,
            path,
            queue=queue,
            endpoint=endpoint,
            endpoint_name=endpoint_name,
            metadata=metadata,
            on_upload=on_upload,
            tags=tags,
        )


async def cancel_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Ask the batch's provider to cancel it (`actor`: who asked, for the audit trail)."""
    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    provider = provider_for(batch)
    with _speaking(provider):
        await provider.cancel(db, batch.id, actor)


async def resubmit_batch(
    db: Store, batch_id: int, *, include_permanent: bool = False, actor: Actor | None = None
) -> int:
    """Send a batch's failures again as a child batch at its provider; the child's id
    (BudgetError when its queue spent its budget)."""
    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    await budget.require_budget_left(db, batch.queue)
    provider = provider_for(batch)
    with _speaking(provider):
        return await provider.resubmit(
            db, batch.id, include_permanent=include_permanent, actor=actor
        )


async def delete_batch(db: Store, batch_id: int, actor: Actor | None = None) -> None:
    """Delete an ingested batch at its provider (what it keeps of it); results stay here."""
    batch = await db.read(lambda tx: tx.batches.get_batch(batch_id=batch_id))
    provider = provider_for(batch)
    with _speaking(provider):
        await provider.delete(db, batch.id, actor)


async def import_batches(
    db: Store, *, queue: str = "imported", provider: str = DEFAULT_PROVIDER
) -> list[int]:
    """Track the batches of the `provider` account submitted elsewhere; their local ids."""
    chosen = get_provider(provider)
    with _speaking(chosen):
        return await chosen.import_batches(db, queue=queue)


async def reconcile(db: Store) -> list[Reconciled]:
    """Finish interrupted submissions, each at its batch's provider."""
    names = sorted(
        {batch.provider for batch in await db.read(lambda tx: tx.batches.submitting_batches())}
    )
    done: list[Reconciled] = []
    for name in names:
        provider = get_provider(name)
        with _speaking(provider):
            async with provider.session() as session:
                done += await session.reconcile(db)
    return done


def _note_failure(tx: Tx, batch_id: int, message: str, permanent: bool = False) -> None:
    """Record a failed call and push the batch's next poll back (exponential, jittered).

    A permanent refusal, or UNREACHABLE_AFTER failures in a row, marks it unreachable.
    """
    now = time.time()
    failures = tx.batches.note_poll_failure(batch_id, message, now)
    delay = backoff(failures - 1, POLL_BACKOFF_BASE, POLL_BACKOFF_MAX)
    tx.batches.update_batch(batch_id, {"next_poll_at": now + delay}, now)
    if permanent or failures >= UNREACHABLE_AFTER:
        tx.batches.mark_unreachable(batch_id, now)


async def note_failure(db: Store, batch_id: int, message: str, *, permanent: bool = False) -> None:
    """Record a provider error on a batch (poll_error, polled_at) and back off."""
    await db.write(partial(_note_failure, batch_id=batch_id, message=message, permanent=permanent))
