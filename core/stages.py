"""Stages and progress from inside a job: what `job.stage(...)` and `job.progress(...)` do.

A handler's `StageTracker` (one per attempt) turns its stages and progress into records and
hands them to its worker's `StageReporter`, which holds them until the worker's next
transaction (the group commit of finished jobs and claims, or the heartbeat) saves them:
no transaction of their own, and nothing at all for a handler that uses neither. Stage
marks are all kept; progress keeps only each job's latest value and writes it at most once
a second per job (a stage change or the attempt's end writes it at once). A worker whose
slots are all busy runs no group commit until a job ends, so its heartbeat saves them: a
crash loses at most the last heartbeat interval's reports.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from batchdash.core.stage_records import ProgressMark, StageMark, StageStatus

#: Seconds between two progress writes of one job.
PROGRESS_EVERY = 1.0
#: Longest stage name and progress note kept (longer ones are cut).
NAME_CHARS = 100
NOTE_CHARS = 200


@dataclass(slots=True)
class StageReport:
    """What one transaction saves: stage marks in order, and the progress rows due."""

    marks: list[StageMark] = field(default_factory=list)
    progress: list[ProgressMark] = field(default_factory=list)


class StageReporter:
    """One worker's unsaved stage marks and progress, taken by its next transaction."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._marks: list[StageMark] = []
        self._progress: dict[int, ProgressMark] = {}  # latest unsaved value per job
        self._urgent: set[int] = set()  # jobs whose value is written at the next take
        self._written: dict[int, float] = {}  # clock time of each job's last progress write
        self._ended: set[int] = set()  # attempts over: forget them once their value is out

    def mark(self, mark: StageMark) -> None:
        """Keep a stage mark for the next transaction."""
        self._marks.append(mark)

    def progress(self, mark: ProgressMark, *, urgent: bool = False) -> None:
        """Keep a job's latest progress; `urgent` writes it at the next take, whatever the rate."""
        self._progress[mark.job_id] = mark
        if urgent:
            self._urgent.add(mark.job_id)

    def ended(self, job_id: int) -> None:
        """The job's attempt is over: its last progress goes out with the next take."""
        if job_id in self._progress:
            self._urgent.add(job_id)
            self._ended.add(job_id)
        else:
            self._written.pop(job_id, None)

    def take(self) -> StageReport | None:
        """The marks and the progress due now (None when nothing is: no SQL at all)."""
        if not self._marks and not self._progress:
            return None
        now = self._clock()
        due = [
            job_id
            for job_id in self._progress
            if job_id in self._urgent
            or now - self._written.get(job_id, -math.inf) >= PROGRESS_EVERY
        ]
        report = StageReport(self._marks, [self._progress.pop(job_id) for job_id in due])
        self._marks = []
        for job_id in due:
            self._urgent.discard(job_id)
            self._written[job_id] = now
            if job_id in self._ended:
                self._ended.discard(job_id)
                del self._written[job_id]
        return report if report.marks or report.progress else None

    def put_back(self, report: StageReport) -> None:
        """A transaction that failed: its marks and progress go out with the next one."""
        self._marks[:0] = report.marks
        for mark in report.progress:
            self._progress.setdefault(mark.job_id, mark)
            self._urgent.add(mark.job_id)


@dataclass(frozen=True, slots=True)
class AttemptId:
    """Which attempt a tracker reports for."""

    job_id: int
    token: str
    queue: str
    attempt: int


class StageTracker:
    """One attempt's stages and progress; without a reporter (outside a worker) it only times."""

    def __init__(
        self, reporter: StageReporter | None = None, attempt: AttemptId | None = None
    ) -> None:
        self._reporter = reporter
        self._attempt = attempt or AttemptId(0, "", "", 1)
        self._seq = 0
        self._open: list[str] = []  # the stages the handler is inside, innermost last
        self._fraction: float | None = None
        self._note: str | None = None
        #: The innermost stage that failed and the exception that failed it.
        self.failure: tuple[str, BaseException] | None = None

    @asynccontextmanager
    async def stage(self, name: str) -> AsyncIterator[None]:
        """Run the block as the stage `name`: its start, duration and failure are recorded."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a stage needs a name, not {name!r}")
        name = name.strip()[:NAME_CHARS]
        self._seq += 1
        seq, started, clock = self._seq, time.time(), time.monotonic()
        self._mark(seq, name, started, StageStatus.RUNNING)
        self._open.append(name)
        self._report(urgent=True)
        try:
            yield
        except BaseException as exc:
            if self.failure is None or self.failure[1] is not exc:
                self.failure = (name, exc)  # the innermost stage sees it first
            duration = time.monotonic() - clock
            self._mark(seq, name, started, StageStatus.FAILED, duration, describe(exc))
            raise
        else:
            self._mark(seq, name, started, StageStatus.FINISHED, time.monotonic() - clock)
        finally:
            self._open.pop()
            self._report(urgent=True)

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Record how far the job is (0..1, clamped) with a short note; saved ≤ once a second."""
        value = float(fraction)
        if math.isnan(value):
            raise ValueError("progress must be a number from 0 to 1, not NaN")
        self._fraction = min(1.0, max(0.0, value))
        self._note = None if note is None else str(note)[:NOTE_CHARS]
        self._report(urgent=False)

    def failed_stage(self, exc: BaseException) -> str | None:
        """The stage that `exc` (or an exception it came from) failed, if one did."""
        if self.failure is None:
            return None
        name, failed = self.failure
        seen: set[int] = set()
        stack: list[BaseException | None] = [exc]
        while stack:
            current = stack.pop()
            if current is None or id(current) in seen:
                continue
            if current is failed:
                return name
            seen.add(id(current))
            stack += [current.__cause__, current.__context__]
        return None

    def _mark(
        self,
        seq: int,
        name: str,
        started: float,
        status: StageStatus,
        duration: float | None = None,
        error: str | None = None,
    ) -> None:
        if self._reporter is None:
            return
        a = self._attempt
        self._reporter.mark(
            StageMark(
                a.job_id, a.token, a.queue, a.attempt, seq, name, started, status, duration, error
            )
        )

    def _report(self, *, urgent: bool) -> None:
        if self._reporter is None:
            return
        stage = self._open[-1] if self._open else None
        a = self._attempt
        mark = ProgressMark(a.job_id, a.token, stage, self._fraction, self._note)
        self._reporter.progress(mark, urgent=urgent)


def describe(exc: BaseException) -> str:
    """`Type: message` (just `Type` without one); a handler's own error is its message alone
    (as the job's error shows it), and a cancel is `cancelled`."""
    from batchdash.core.handlers import HandlerError  # handlers imports this module

    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    text = str(exc)
    if isinstance(exc, HandlerError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
