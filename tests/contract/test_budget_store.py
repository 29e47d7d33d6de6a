"""Cost budgets on every back end: set and clear, spend per queue (work plus QA verdicts,
never a QA batch's lines twice), and the pause the store applies in the write whose cost
reaches the budget, with its reason and timeline event."""

from __future__ import annotations

import threading
import time

import pytest

from batchdash.core import budget, queue
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import BudgetError, NotFoundError
from batchdash.core.models import Claim, JobFilter, QueueInfo
from batchdash.core.qa_models import QAResult
from tests.contract.backends import Backend, jobs


async def _info(db: Store, name: str) -> QueueInfo:
    return await db.read(lambda tx: tx.queues.get_queue(name))


async def _finish(db: Store, queue_name: str, n: int, cost: float) -> list[str]:
    """Claim and succeed `n` jobs of a queue at `cost` each; the queues claimed from."""
    claims = await queue.claim(db, "w", n, lease_seconds=30, queues=(queue_name,))
    usage = queue.Usage(10, 5, cost)
    await queue.report(db, "w", [queue.succeeded(c, {"ok": True}, usage) for c in claims])
    return [c.queue for c in claims]


async def _queue_events(db: Store, name: str) -> list[tuple[str, str | None]]:
    events = await db.read(lambda tx: tx.events.list_events(None))
    return [(e.kind, e.detail) for e in events if e.queue == name and e.job_id is None]


async def test_set_and_clear_a_budget(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(2))
    assert (await _info(db, "papers")).budget_usd is None
    info = await budget.set_budget(db, "papers", 25.0)
    assert (info.budget_usd, info.spend_usd, info.paused) == (25.0, 0.0, False)
    listed = await db.read(lambda tx: tx.queues.list_queues())
    assert [(q.name, q.budget_usd) for q in listed] == [("papers", 25.0)]
    assert (await budget.set_budget(db, "papers", None)).budget_usd is None
    assert await _queue_events(db, "papers") == [("budget", "$25.00"), ("budget", "cleared")]
    with pytest.raises(NotFoundError, match="unknown queue 'nope'"):
        await budget.set_budget(db, "nope", 1.0)


async def test_spend_counts_work_and_qa_verdicts_per_queue(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(3))
    await queue.enqueue(db, "essays", jobs(1, "e"))
    await _finish(db, "papers", 3, 0.25)
    await _finish(db, "essays", 1, 2.0)
    # Two judges on job 1 (a papers job); a QA batch's line lives in `qa:papers` and its
    # cost is on the verdict too, so the spend of papers counts the verdicts alone.
    verdicts = [QAResult(1, j, {"overall": 5.0}, None, None, None, 10, 4, 0.1, 1.0) for j in "ab"]
    await db.write(lambda tx: [tx.qa.save_qa_result(v, replace=False) for v in verdicts])
    papers, essays = await _info(db, "papers"), await _info(db, "essays")
    assert papers.spend_usd == pytest.approx(0.95)
    assert essays.spend_usd == pytest.approx(2.0)
    rescored = QAResult(1, "a", {"overall": 6.0}, None, None, None, 10, 4, 0.3, 2.0)
    await db.write(lambda tx: tx.qa.save_qa_result(rescored, replace=True))
    assert (await _info(db, "papers")).spend_usd == pytest.approx(1.15)


async def test_the_finish_that_reaches_the_budget_pauses_the_queue(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(5))
    await queue.enqueue(db, "open", jobs(1, "o"))
    await budget.set_budget(db, "papers", 1.0)
    await _finish(db, "papers", 1, 0.6)
    assert not (await _info(db, "papers")).paused
    await _finish(db, "papers", 1, 0.6)  # 1.20 >= 1.00: paused in that same write
    info = await _info(db, "papers")
    assert (info.paused, info.pause_reason, info.budget_reached) == (True, "budget", True)
    assert budget.budget_note(info) == "budget $1.00 reached ($1.20 spent)"
    assert budget.queue_spend_text(info) == "$1.20 / $1.00"
    assert ("paused", "budget") in await _queue_events(db, "papers")
    claimed = await queue.claim(db, "w", 10, lease_seconds=30)
    assert [c.queue for c in claimed] == ["open"]  # nothing more from papers


async def test_a_qa_verdict_that_reaches_the_budget_pauses_the_queue(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(2))
    await budget.set_budget(db, "papers", 0.5)
    await _finish(db, "papers", 1, 0.4)
    verdict = QAResult(1, "judge", {"overall": 5.0}, None, None, None, 10, 4, 0.2, 1.0)
    await db.write(lambda tx: tx.qa.save_qa_result(verdict, replace=False))
    assert (await _info(db, "papers")).pause_reason == "budget"


async def test_resume_refuses_until_the_budget_is_raised(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(3))
    await budget.set_budget(db, "papers", 0.5)
    await _finish(db, "papers", 1, 0.5)
    with pytest.raises(BudgetError, match=r"'papers' spent \$0.5000 of its \$0.5000 budget"):
        await queue.set_paused(db, "papers", False)
    # `resume` over every queue leaves it paused; raising the budget resumes it.
    assert (await queue.resume(db, JobFilter()))[1] == []
    info = await budget.set_budget(db, "papers", 2.0)
    assert (info.paused, info.pause_reason) == (False, None)
    assert len(await queue.claim(db, "w", 10, lease_seconds=30)) == 2


async def test_a_budget_at_or_below_the_spend_pauses_at_once(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(2))
    await _finish(db, "papers", 1, 0.5)
    info = await budget.set_budget(db, "papers", 0.25)
    assert (info.paused, info.pause_reason) == (True, "budget")
    info = await budget.set_budget(db, "papers", None)  # clearing it resumes too
    assert (info.paused, info.pause_reason) == (False, None)


async def test_a_manual_pause_is_kept_apart_from_the_budget(db: Store) -> None:
    await queue.enqueue(db, "papers", jobs(2))
    await queue.set_paused(db, "papers", True)
    assert (await _info(db, "papers")).pause_reason == "manual"
    await budget.set_budget(db, "papers", 100.0)  # a budget change never resumes it
    assert (await _info(db, "papers")).pause_reason == "manual"
    await queue.set_paused(db, "papers", False)
    info = await _info(db, "papers")
    assert (info.paused, info.pause_reason) == (False, None)


async def test_two_writers_finishing_at_once_still_stop_within_a_job_each(
    db: Store, backend: Backend
) -> None:
    """Like two workers: each transaction records the last outcome and claims the next
    job. A budget of 10.5 jobs stops them after at most 12 (one more in each one's hands)."""
    cost = 0.25
    with backend.open_sync() as s:
        s.write(lambda tx: tx.jobs.enqueue("papers", "noop", jobs(40), time.time(), None))
        s.write(lambda tx: tx.queues.set_budget("papers", 10.5 * cost, time.time()))
    start = threading.Barrier(2)

    def work(name: str) -> None:
        held: list[Claim] = []
        with backend.open_sync() as s:
            start.wait()
            while True:

                def step(tx: Tx, done: list[Claim] = held) -> list[Claim]:
                    usage = queue.Usage(10, 5, cost)
                    tx.jobs.finish(name, [queue.succeeded(c, None, usage) for c in done])
                    return tx.jobs.claim(name, queue.new_token(), 1, 30.0, (), time.time())

                held = s.write(step)
                if not held:
                    return

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    info = await _info(db, "papers")
    assert (info.paused, info.pause_reason) == (True, "budget")
    assert 11 <= info.counts["succeeded"] <= 12
