"""The store's port for pruning finished work: the `Pruning` repository (`tx.prune`).

Part of `ports.py` (which `Tx` joins it in), kept apart only for size. `core/prune.py`
drives it, one short transaction per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only
    from batchdash.core.prune import Pruned, PruneScope


class Pruning(Protocol):
    """Deleting finished jobs with everything that refers to them, and emptied batches.

    A job is prunable when its status is one of the scope's finished ones, its queue is in
    the scope (if it names any), and it finished (or, without a finish time, last changed)
    before the cutoff. A batch is prunable when it ended, its results are in, it last changed
    before the cutoff, it is of a scope queue, and every job and line of it is prunable (so
    once the jobs are gone it has none). Pruning a batch unlinks its resubmitted children
    (`parent_id`) and the QA verdicts it produced (`batch_id`), which stay.
    """

    def count_prunable(self, scope: PruneScope) -> Pruned:
        """What a prune of `scope` would delete now (the `--dry-run` figures)."""

    def prune_jobs(self, scope: PruneScope, after_id: int, limit: int) -> tuple[Pruned, int | None]:
        """Delete up to `limit` prunable jobs with ids above `after_id`, with their payloads,
        results, events, QA verdicts, tags and batch lines; returns what was deleted and the
        last id deleted (None when no prunable job was left after `after_id`)."""

    def prune_batches(self, scope: PruneScope, limit: int) -> int:
        """Delete up to `limit` prunable batches with their events, tags and submit leases;
        returns how many."""
