"""Pruning: deleting finished jobs (and what hangs off them) finished before a cutoff.

A prune runs as many short transactions (`CHUNK` jobs each, walked in id order), so workers
and dashboards are never held up for long and an interrupt between two of them leaves a
consistent store: every job is gone with its payload, result, events, QA verdicts, tags and
batch lines, or kept with all of them. Counts kept by the store (jobs per queue and status,
QA spend, local throughput) follow the deleted rows. Finished batches whose jobs are all
gone are pruned after the jobs (see `core/db/prune_ports.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING

from batchdash.core.models import TERMINAL_JOB_STATUSES, JobStatus

if TYPE_CHECKING:
    from batchdash.core.db.ports import SyncStore, Tx

#: Jobs deleted per transaction: a few milliseconds of write lock each.
CHUNK = 1000

#: Statuses prune may delete, in the enum's order: never pending or running jobs.
PRUNABLE_STATUSES = tuple(s.value for s in JobStatus if s in TERMINAL_JOB_STATUSES)


@dataclass(frozen=True, slots=True)
class PruneScope:
    """Which jobs a prune deletes: finished before `cutoff` (epoch seconds), with one of
    `statuses` (all finished ones by default), in one of `queues` (any when empty)."""

    cutoff: float
    statuses: tuple[str, ...] = PRUNABLE_STATUSES
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune removed (or, dry, would remove)."""

    jobs: int = 0
    events: int = 0
    qa_results: int = 0
    batch_items: int = 0
    tags: int = 0
    batches: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def describe(self) -> str:
        """`1,000 jobs, 3,012 events, 0 QA verdicts, 0 batch lines, 2,000 tags, 0 batches`."""
        names = ("jobs", "events", "QA verdicts", "batch lines", "tags", "batches")
        values = (getattr(self, f.name) for f in fields(self))
        return ", ".join(f"{n:,} {name}" for n, name in zip(values, names, strict=True))


def prune(
    db: SyncStore,
    scope: PruneScope,
    *,
    stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Pruned], None] = lambda _: None,
    chunk: int = CHUNK,
) -> tuple[Pruned, bool]:
    """Delete what `scope` selects, `chunk` jobs per transaction, then the emptied batches.

    `stop()` is asked between transactions (Ctrl-C): the result is what was removed and
    whether it stopped early. `on_progress` sees the running total after each transaction.
    """
    total, after = Pruned(), 0
    while not stop():
        done, last = db.write(partial(_prune_jobs, scope=scope, after=after, chunk=chunk))
        total += done
        on_progress(total)
        if last is None:
            break
        after = last
    else:
        return total, True
    while not stop():
        batches = db.write(lambda tx: tx.prune.prune_batches(scope, chunk))
        total += Pruned(batches=batches)
        on_progress(total)
        if batches < chunk:
            return total, False
    return total, True


def _prune_jobs(tx: Tx, *, scope: PruneScope, after: int, chunk: int) -> tuple[Pruned, int | None]:
    return tx.prune.prune_jobs(scope, after, chunk)
