"""One poll cycle, shared by the dashboard, `batchdash poll` (a daemon) and `--once`.

A cycle refreshes the remote batches that are due (each with its own backoff), ingests
the finished ones, finishes submissions whose submitter died, then does the local part:
rescue expired job leases and mark stale or dead workers. A provider error is recorded on
its batch (`poll_error`, `polled_at`) and the cycle goes on with the next one.

Each batch is polled by the provider it names (`batches.provider`, see `core.providers`);
a batch naming an unknown provider is marked unreachable with that reason. `openai` is
imported only when some batch actually needs it, so a cycle over a store with no active
batch stays cheap and needs no API key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batchdash.core import qa, queue, remote
from batchdash.core.config import ConfigError
from batchdash.core.db.ports import Store
from batchdash.core.endpoints import batch_endpoint
from batchdash.core.errors import UnknownProviderError
from batchdash.core.models import Batch
from batchdash.core.providers import get_provider
from batchdash.core.worker import check_workers

if TYPE_CHECKING:
    from batchdash.core.providers.base import BatchProvider, ProviderSession


@dataclass(slots=True)
class CycleReport:
    """What one cycle did: batches polled and ingested, provider errors, jobs rescued.

    `blocked` names the batches the provider refused for good this cycle (bad key,
    unknown batch): waiting cannot finish them, so `poll --until-done` stops on them.
    """

    polled: int = 0
    ingested: int = 0
    errors: list[str] = field(default_factory=list)
    rescued: int = 0
    reconciled: int = 0
    blocked: dict[int, str] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        """True when the cycle changed or tried anything worth printing."""
        return bool(self.polled or self.ingested or self.errors or self.rescued or self.reconciled)


async def run_cycle(db: Store, *, remote: bool = True) -> CycleReport:
    """Run one cycle; with `remote=False` only the local part (no provider calls)."""
    report = CycleReport()
    if remote:
        await _remote_part(db, report)
    report.rescued = await queue.rescue_expired(db)
    await check_workers(db)
    # QA (core/qa/): store the verdicts of QA batches whose results were just ingested.
    await qa.collect_batches(db)
    return report


async def _remote_part(db: Store, report: CycleReport) -> None:
    due = await db.read(lambda tx: tx.batches.batches_due(now=time.time()))
    submitting = await db.read(lambda tx: tx.batches.submitting_batches())
    for name in sorted({batch.provider for batch in (*due, *submitting)}):
        await _provider_part(
            db,
            report,
            name,
            [b for b in due if b.provider == name],
            [b for b in submitting if b.provider == name],
        )


async def _provider_part(
    db: Store, report: CycleReport, name: str, due: list[Batch], submitting: list[Batch]
) -> None:
    """Reconcile and poll the batches of one provider, with one session for all of them.

    Each batch needs its own endpoint's key (`core.endpoints.batch_endpoint`): a batch
    whose key is missing, or whose named endpoint left the config file, is stuck alone.
    Submitting batches wait for it without an error each cycle; polled ones show why they
    are stuck. Either way a run that waits for them cannot finish.
    """
    try:
        provider = get_provider(name)
    except UnknownProviderError as exc:
        await _stuck(db, report, due, submitting, {b.id: str(exc) for b in (*due, *submitting)})
        return
    unready = {b.id: why for b in (*due, *submitting) if (why := _unready(b))}
    await _stuck(db, report, due, submitting, unready)
    due = [b for b in due if b.id not in unready]
    reconcile = any(b.id not in unready for b in submitting)
    if not due and not reconcile:
        return
    async with provider.session() as session:
        if reconcile:
            await _reconcile(db, report, provider, session)
        for batch in due:
            try:
                ingested = await session.poll(db, batch)
            except Exception as exc:  # recorded on the batch; the next one still gets polled
                message, permanent = provider.describe(exc), provider.is_permanent(exc)
                await _failed(db, report, batch, message, permanent=permanent)
                continue
            if ingested is None:
                continue  # another poller is working on it
            report.polled += 1
            report.ingested += int(ingested)


async def _stuck(
    db: Store, report: CycleReport, due: list[Batch], submitting: list[Batch], why: dict[int, str]
) -> None:
    """Report the batches no call can be made for (`why`: batch id → reason)."""
    for batch in submitting:
        if batch.id in why:
            report.blocked[batch.id] = f"batch {batch.id} cannot be submitted: {why[batch.id]}"
    for batch in due:
        if batch.id in why:
            await _failed(db, report, batch, why[batch.id], permanent=True)


def _unready(batch: Batch) -> str | None:
    """Why no call on this batch can be made now (no key, a vanished endpoint), or None."""
    try:
        batch_endpoint(batch).key()
    except ConfigError as exc:
        return str(exc)
    return None


async def _reconcile(
    db: Store, report: CycleReport, provider: BatchProvider, session: ProviderSession
) -> None:
    try:
        outcomes = await session.reconcile(db)
    except Exception as exc:  # a poller must outlive any provider failure
        report.errors.append(f"reconcile: {provider.describe(exc)}")
        return
    for batch_id, what, permanent in outcomes:
        if not what.startswith("error:"):
            report.reconciled += 1
            continue
        report.errors.append(f"reconcile batch {batch_id}: {what[7:]}")
        if permanent:
            report.blocked[batch_id] = f"batch {batch_id} cannot be submitted: {what[7:]}"


async def _failed(
    db: Store, report: CycleReport, batch: Batch, message: str, *, permanent: bool
) -> None:
    await remote.note_failure(db, batch.id, message, permanent=permanent)
    report.errors.append(f"batch {batch.id}: {message}")
    if permanent:
        report.blocked[batch.id] = f"batch {batch.id} cannot be polled: {message}"
