"""The queue pane and the job detail: one page of jobs, and one job with its timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batchdash.core.db.ports import Page, Tx
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, Batch, Event, Job, JobFilter, JobStatus
from batchdash.core.qa_models import QAResult

if TYPE_CHECKING:  # a name only here: `--once` never reads a job's stages
    from batchdash.core.stage_records import StageRun

#: A filtered count stops here ("10,000+ of …") instead of scanning the whole table.
COUNT_CAP = 10_000
#: A free-text filter's count stops sooner ("1,000+"): every match is checked on its row
#: (after PostgreSQL's trigram indexes, or in SQLite's scan), and counting 10,001 took
#: 177 ms of a refresh at 10M jobs on PostgreSQL, 1,001 took 16 ms (but ~200 ms under a
#: status filter too: the planner ANDs the status index's bitmap, 520k rows, with the
#: trigram one instead of stopping at the 1,001st match).
TEXT_COUNT_CAP = 1_000

#: Sort orders offered by the queue pane, in the order `s` cycles through them.
ORDERS = {
    "-id": "newest",
    "-updated": "recently updated",
    "key": "queue, key",
    "attempts": "most attempts",
    "status": "status, oldest first",
}


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of the queue pane: rows plus what "N of M" needs."""

    rows: list[Job]
    #: Matching jobs in front of this page: exact, or at least this many (`offset_exact`
    #: False: a keyset page deep in a long list, where counting them all would cost what
    #: OFFSET did).
    offset: int
    limit: int
    matching: int
    exact: bool
    total: int
    order: str
    offset_exact: bool = True
    #: The page's number as the reader turned to it, when the rows in front of it were not
    #: counted (a keyset page under a free-text filter: every match in front is checked on
    #: its row, 70 ms at 1M jobs however near the page is; then `offset` is 0, a bound).
    number: int | None = None

    @property
    def matching_text(self) -> str:
        """`1,234` or `10,000+` when the count stopped at the cap."""
        return f"{self.matching:,}" + ("" if self.exact else "+")

    @property
    def at_end(self) -> bool:
        """Nothing matches after this page (as far as this read knows)."""
        if self.exact and self.offset_exact:
            return self.offset + len(self.rows) >= self.matching
        return len(self.rows) < self.limit

    @property
    def at_start(self) -> bool:
        """Nothing matches in front of this page (as far as this read knows)."""
        return self.offset_exact and self.offset == 0

    @property
    def page_number(self) -> int | None:
        """This page's number (1 = the first): as the reader turned to it, or from the rows
        counted in front of it; None when neither is known."""
        if self.number is not None:
            return self.number
        return self.offset // self.limit + 1 if self.offset_exact else None


def job_page(
    tx: Tx,
    flt: JobFilter,
    *,
    order: str = "-id",
    offset: int = 0,
    limit: int = 100,
    total: int | None = None,
    page: Page | None = None,
    number: int | None = None,
) -> JobPage:
    """One page of jobs matching `flt`, with a count capped at COUNT_CAP (TEXT_COUNT_CAP
    under a free-text filter): from `offset` (LIMIT/OFFSET), or next to `page`'s row.

    A keyset page says how many rows are in front of it only up to the same cap; under a
    free-text filter, when the reader's navigation knows its `number`, it says that instead
    and counts nothing in front. When the rows after its row went away it shows those
    before it; when too few are before it, the first page.
    """
    cap = TEXT_COUNT_CAP if flt.text else COUNT_CAP
    matching, exact = tx.jobs.count_jobs_upto(flt, cap)
    if total is None:
        total = tx.jobs.count_jobs(ALL_JOBS)
    if page is not None:
        rows = tx.jobs.list_jobs(flt, limit=limit, order=order, with_bodies=False, page=page)
        if not rows and not page.before:
            rows = tx.jobs.list_jobs(
                flt, limit=limit, order=order, with_bodies=False, page=Page(page.job, True)
            )
            number = None  # the rows before the reader's page, not the page turned to
        if len(rows) == limit or (rows and not page.before):
            if flt.text and number is not None:
                return JobPage(rows, 0, limit, matching, exact, total, order, False, number)
            ahead, known = tx.jobs.count_jobs_upto(flt, cap, ahead_of=rows[0], order=order)
            return JobPage(rows, ahead, limit, matching, exact, total, order, known)
        offset = 0
    if matching and offset >= matching and exact:
        offset = max(0, (matching - 1) // limit * limit)  # the list shrank under the cursor
    rows = tx.jobs.list_jobs(flt, limit=limit, offset=offset, order=order, with_bodies=False)
    return JobPage(rows, offset, limit, matching, exact, total, order)


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Everything the job detail pane shows about one job."""

    job: Job
    events: list[Event]
    qa: list[QAResult]
    batch: Batch | None
    next_retry_at: float | None
    #: Full size in bytes of each of the job's texts (error, payload, result) that was cut
    #: to DETAIL_TEXT_CHARS for the view.
    cut: dict[str, int] = field(default_factory=dict)
    #: Its stage runs, by attempt and order (`job.stage(...)` in its handler).
    stages: list[StageRun] = field(default_factory=list)
    #: The job's tags, sorted.
    tags: list[str] = field(default_factory=list)


#: The timeline keeps the latest this-many events of a job.
DETAIL_EVENTS = 200
#: Characters of a job's error, payload and result the detail reads (and shows); a
#: multi-megabyte text would otherwise be read and drawn again on every key press.
DETAIL_TEXT_CHARS = 20_000


def job_detail(tx: Tx, job_id: int, now: float) -> JobDetail | None:
    """One job with its timeline, QA verdicts, batch and tags; None if it no longer exists."""
    try:
        job, cut = tx.jobs.get_job_head(job_id, DETAIL_TEXT_CHARS)
    except NotFoundError:
        return None
    events = tx.events.list_events(job_id)[-DETAIL_EVENTS:]
    batch = None
    if job.batch_id is not None:
        try:
            batch = tx.batches.get_batch(job.batch_id)
        except NotFoundError:
            batch = None
    retry_at = job.run_after if job.status == JobStatus.PENDING and job.run_after > now else None
    qa = tx.qa.qa_results_for_job(job_id)
    stages = tx.stages.job_stages(job_id)
    tags = tx.tags.job_tags([job_id]).get(job_id, [])
    return JobDetail(job, events, qa, batch, retry_at, cut, stages, tags)
