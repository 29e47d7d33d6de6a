"""What is left to judge, and saving verdicts: shared by `qa run`, workers and QA batches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from batchdash.core.db.ports import Tx
from batchdash.core.models import Job, JobFilter
from batchdash.core.qa.rubric import Rubric, queue_rubric
from batchdash.core.qa_models import QAResult


@dataclass(frozen=True, slots=True)
class Work:
    """The (job, judge, rubric) triples of one page still to judge, and how many were not."""

    pairs: list[tuple[Job, str, Rubric]]
    skipped: int


def plan(tx: Tx, job_ids: Sequence[int], judges: Sequence[str], rescore: bool) -> Work:
    """Load a page of jobs and pick the (job, judge) pairs still to judge."""
    jobs = tx.jobs.list_jobs(JobFilter(ids=tuple(job_ids)))
    done = set() if rescore else tx.qa.qa_scored_pairs(job_ids, judges)
    rubrics: dict[str, Rubric] = {}
    pairs: list[tuple[Job, str, Rubric]] = []
    for job in jobs:
        if job.queue not in rubrics:
            rubrics[job.queue] = queue_rubric(tx, job.queue)
        pairs.extend(
            (job, judge, rubrics[job.queue]) for judge in judges if (job.id, judge) not in done
        )
    return Work(pairs, len(jobs) * len(judges) - len(pairs))


def pages(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    """`ids` in slices of `size`: paging keeps memory flat for big samples."""
    return (ids[i : i + size] for i in range(0, len(ids), size))


def store_verdicts(tx: Tx, results: Sequence[QAResult], replace: bool) -> tuple[int, int]:
    """Save verdicts of jobs that still exist; (scored, errors) actually saved."""
    alive = tx.jobs.existing_job_ids([r.job_id for r in results])
    scored = errors = 0
    for result in results:
        if result.job_id in alive and tx.qa.save_qa_result(result, replace=replace):
            scored += result.error is None
            errors += result.error is not None
    return scored, errors
