"""The store's port for stages and progress reported from inside jobs (`tx.stages`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from batchdash.core.stage_records import ProgressMark, StageMark, StageRun, StageStat


class Stages(Protocol):
    """Stage runs of job attempts, running jobs' progress, and per-stage statistics."""

    def save(self, marks: Sequence[StageMark], progress: Sequence[ProgressMark]) -> None:
        """Record stage marks (a row per stage run, and its `stage_*` event) and progress,
        each only while its claim still holds (a rescued attempt's late reports are dropped)."""

    def job_stages(self, job_id: int) -> list[StageRun]:
        """Every stage run of a job, by attempt and order (empty for a job without stages)."""

    def stage_stats(self, queue: str | None = None) -> list[StageStat]:
        """Per queue and stage: runs, failures and p50/p95 of finished runs' durations."""
