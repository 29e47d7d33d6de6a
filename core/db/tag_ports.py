"""The store's port for tags on jobs and batches: the `Tags` repository (`tx.tags`).

Part of `ports.py` (which `Tx` joins it in), kept apart only for size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only
    from batchdash.core.models import NewJob


class Tags(Protocol):
    """Tags: labels on jobs and batches, for `tag:` filters and the detail views."""

    def tag_jobs(self, queue: str, jobs: Sequence[NewJob]) -> None:
        """Give these jobs of the queue (found by key) their `NewJob.tags`; tags a job
        already has stay once."""

    def tag_batches(self, batch_ids: Sequence[int], tags: Sequence[str]) -> None:
        """Tag these batches and every job they hold (tags already there stay once)."""

    def job_tags(self, job_ids: Sequence[int]) -> dict[int, list[str]]:
        """The tags of each of these jobs, sorted (jobs without tags are left out)."""

    def batch_tags(self, batch_ids: Sequence[int]) -> dict[int, list[str]]:
        """The tags of each of these batches, sorted (batches without tags are left out)."""
