"""Workers scoring every Nth success of a queue, in background tasks beside their jobs."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from batchdash.core.db.ports import Store, Tx
from batchdash.core.qa.judge import JudgeCall, judge_job, open_client
from batchdash.core.qa.plan import plan, store_verdicts
from batchdash.core.qa.sampling import should_sample
from batchdash.core.qa_models import QAResult

#: Judge calls one worker runs at once beside its jobs.
WORKER_QA_CONCURRENCY = 4


class WorkerQA:
    """Scores every Nth success of a queue, in background tasks outside the job slots.

    "Every Nth" is counted in the store, per queue, across every sampling worker: the
    worker calls `sample` inside the transaction that records its successes and `judge`
    with what it returned once that committed, and `drain` on shutdown, which waits
    (bounded) for the judges still running. A worker killed between the two loses the
    judging of its sampled jobs (at most once, never twice); `qa run` can judge them.
    """

    def __init__(self, db: Store, every: int, judges: Sequence[str]) -> None:
        self.db = db
        self.every = every
        self.judges = tuple(judges)
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: Any = None
        self._limit = asyncio.Semaphore(WORKER_QA_CONCURRENCY)

    def sample(self, tx: Tx, succeeded: Sequence[int]) -> list[int]:
        """Number these just-recorded successes in their queues; the ids to judge."""
        numbers = tx.qa.number_qa_successes(succeeded)
        pairs = zip(succeeded, numbers, strict=True)
        return [job_id for job_id, n in pairs if should_sample(n, self.every)]

    def judge(self, job_ids: Iterable[int]) -> None:
        """Score sampled jobs in the background (call after their transaction committed)."""
        for job_id in job_ids:
            task = asyncio.create_task(self._score(job_id), name=f"qa-{job_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _score(self, job_id: int) -> None:
        try:
            async with self._limit:
                await self._score_now(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # QA must never take the worker down
            print(f"batchdash worker: QA of job {job_id} failed: {exc}", file=sys.stderr)

    async def _score_now(self, job_id: int) -> None:
        work = await self.db.read(lambda tx: plan(tx, [job_id], self.judges, False))
        if not work.pairs:
            return
        if self._client is None:
            try:
                self._client = open_client(self.judges)
            except Exception as exc:  # no key: record why, for every judge
                await self._save([JudgeCall(job_id, j).error(str(exc)) for j in self.judges])
                return
        results = await asyncio.gather(
            *(judge_job(self._client, job, judge, rubric) for job, judge, rubric in work.pairs)
        )
        await self._save(results)

    async def _save(self, results: Sequence[QAResult]) -> None:
        await self.db.write(partial(store_verdicts, results=results, replace=False))

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for running judges, cancel the rest, close."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in set(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.close()
