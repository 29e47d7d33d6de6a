"""Cost budgets per queue: set or clear one, and the words every view uses for it.

A queue's spend is what its jobs cost (local attempts and the lines of remote batches once
their usage is ingested) plus what the QA judges spent on its jobs. The store pauses a
budgeted queue (pause reason "budget") in the same write whose cost makes the spend reach
the budget, so workers claim nothing more from it; raising or clearing the budget resumes
it. `queue resume` refuses while the spend is still at or over the budget: resuming would
only run one more job per worker and pause again, spending past the budget each time.
"""

from __future__ import annotations

import time

from batchdash.core.db.ports import Store
from batchdash.core.errors import BudgetError, NotFoundError
from batchdash.core.models import PAUSE_BUDGET, QueueInfo
from batchdash.core.pricing import usd


async def set_budget(db: Store, queue: str, amount: float | None) -> QueueInfo:
    """Set (None: clear) a queue's budget in USD; the queue afterwards (maybe un/paused)."""
    return await db.write(lambda tx: tx.queues.set_budget(queue, amount, time.time()))


def queue_spend_text(info: QueueInfo) -> str:
    """`$12.40 / $25.00` with a budget, `$12.40` without."""
    spent = usd(info.spend_usd)
    return spent if info.budget_usd is None else f"{spent} / {usd(info.budget_usd)}"


def budget_paused(info: QueueInfo) -> bool:
    """True when the budget paused the queue (it needs a person: raise or clear it)."""
    return info.paused and info.pause_reason == PAUSE_BUDGET


def budget_note(info: QueueInfo) -> str:
    """Why a budget-paused queue stopped: `budget $25.00 reached ($25.03 spent)`."""
    budget = usd(info.budget_usd or 0.0)
    return f"budget {budget} reached ({usd(info.spend_usd)} spent)"


async def require_budget_left(db: Store, queue: str) -> None:
    """BudgetError when `queue` spent its budget: no new remote batch goes out for it."""
    try:
        info = await db.read(lambda tx: tx.queues.get_queue(queue))
    except NotFoundError:
        return  # a new queue has no budget yet
    if info.budget_reached:
        raise BudgetError(
            f"queue {queue!r} {budget_note(info)}: raise or clear its budget to submit more"
        )
