"""Stage and progress records: what handlers report from inside a job, and what is read back.

Plain frozen dataclasses with no I/O. A worker's `core.stages.StageReporter` collects the
write-side ones (`StageMark`, `ProgressMark`) and the store's `stages` repository saves
them inside the worker's own transactions; `StageRun` and `StageStat` are what the
dashboard, `jobs show` and `batchdash stats` read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StageStatus(StrEnum):
    """Where one run of a stage is."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


#: The timeline event of each stage status.
STAGE_EVENT_KIND = {
    StageStatus.RUNNING: "stage_started",
    StageStatus.FINISHED: "stage_finished",
    StageStatus.FAILED: "stage_failed",
}


@dataclass(frozen=True, slots=True)
class StageMark:
    """A stage of one attempt started (`duration` None) or ended, as its handler saw it."""

    job_id: int
    token: str  # the claim's token: a rescued attempt's late marks are not saved
    queue: str
    attempt: int
    seq: int  # the stage's number within its attempt, from 1
    name: str
    started_at: float
    status: StageStatus
    duration: float | None = None
    error: str | None = None

    def event_detail(self) -> str:
        """The timeline line: `fetch, attempt 2`, `…, 0.52s` or `…, 0.52s: TimeoutError: …`."""
        text = f"{self.name}, attempt {self.attempt}"
        if self.duration is not None:
            text += f", {self.duration:.2f}s"
        if self.error:
            text += f": {self.error}"
        return text


@dataclass(frozen=True, slots=True)
class ProgressMark:
    """A running job's latest progress: its current stage, fraction done and note."""

    job_id: int
    token: str
    stage: str | None
    fraction: float | None
    note: str | None


@dataclass(frozen=True, slots=True)
class StageRun:
    """One run of one stage in one attempt of a job, as stored."""

    job_id: int
    attempt: int
    seq: int
    name: str
    started_at: float
    status: str
    duration: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StageStat:
    """How one stage of one queue went: runs, failures and finished-run duration percentiles."""

    queue: str
    name: str
    runs: int
    failed: int
    p50: float | None
    p95: float | None
