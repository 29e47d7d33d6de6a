"""`batchdash qa run`: judge a sample of jobs with every judge, concurrently, in pages."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from batchdash.core.db.ports import Store
from batchdash.core.models import Job
from batchdash.core.qa.judge import CALL_FAILED, KEY_REFUSED, judge_job
from batchdash.core.qa.plan import pages, plan
from batchdash.core.qa.rubric import Rubric
from batchdash.core.qa_models import QAResult


@dataclass(slots=True)
class RunStats:
    """What a QA run did, for its summary line and exit code."""

    scored: int = 0
    errors: int = 0
    skipped: int = 0
    cost: float = 0.0
    unpriced: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: Calls not made because the provider refused the API key (no later call can work).
    unmade: int = 0
    refused: bool = False

    def top_reason(self) -> str:
        """The most frequent error of the run, without the common prefix ('' if none)."""
        top = self.reasons.most_common(1)
        return top[0][0].removeprefix(CALL_FAILED) if top else ""

    def add(self, result: QAResult, saved: bool) -> None:
        """Count one verdict (`saved` False: a concurrent run scored the pair first)."""
        if not saved:
            self.skipped += 1
            return
        if result.error is None:
            self.scored += 1
        else:
            self.errors += 1
            self.reasons[result.error] += 1
            self.refused = self.refused or result.error.startswith(KEY_REFUSED)
        if result.cost is None:
            self.unpriced += result.input_tokens is not None
        else:
            self.cost += result.cost


async def _judge_and_save(
    db: Store, client: Any, job: Job, judge: str, rubric: Rubric, rescore: bool
) -> tuple[QAResult, bool]:
    result = await judge_job(client, job, judge, rubric)
    saved = await db.write(lambda tx: tx.qa.save_qa_result(result, replace=rescore))
    return result, saved


async def run_qa(
    db: Store,
    client: Any,
    job_ids: Sequence[int],
    judges: Sequence[str],
    *,
    rescore: bool = False,
    concurrency: int = 8,
    progress: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Judge the jobs with every judge (pairs already scored skipped unless `rescore`).

    Once the provider refuses the API key (HTTP 401) the remaining calls are not made;
    they are counted in `RunStats.unmade`.
    """
    stats = RunStats()
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Job, judge: str, rubric: Rubric) -> None:
        async with limit:
            if stats.refused:  # a rejected key fails every call: stop making them
                stats.unmade += 1
                return
            result, saved = await _judge_and_save(db, client, job, judge, rubric, rescore)
            stats.add(result, saved)
        if progress is not None:
            progress(stats)

    # Pages keep memory flat for big samples; a page is a few rounds of `concurrency`.
    for page in pages(job_ids, max(100, concurrency * 4)):
        work = await db.read(partial(plan, job_ids=page, judges=judges, rescore=rescore))
        stats.skipped += work.skipped
        await asyncio.gather(*(one(*pair) for pair in work.pairs))
    return stats
