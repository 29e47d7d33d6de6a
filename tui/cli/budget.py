"""`batchdash queue budget NAME --usd 25 | --clear`: a queue's cost budget, and its lines.

The queue's spend (its jobs' cost plus its QA verdicts') is kept by the store, which pauses
the queue (reason "budget") in the write whose cost reaches the budget. Raising the budget
above the spend, or clearing it, resumes a budget pause; `queue resume` refuses while the
spend is still at or over it (see `core/budget.py` for why).
"""

from __future__ import annotations

import argparse
from typing import Any

import click

from batchdash.core import budget as core_budget
from batchdash.core.models import QueueInfo
from batchdash.core.pricing import usd
from batchdash.tui.argtypes import NON_EMPTY, Checked, non_negative_float
from batchdash.tui.cli.common import EXIT_OK, CliError, db_option, example, invoke, run_async


def budget_lines(info: QueueInfo) -> list[str]:
    """The budget lines of `queue show` for one queue: spend against budget, pause reason."""
    if info.budget_usd is None:
        return [f"budget:  none (spent {usd(info.spend_usd)})"]
    left = info.budget_usd - info.spend_usd
    rest = f"{usd(left)} left" if left > 0 else "nothing left"
    lines = [f"budget:  {core_budget.queue_spend_text(info)} ({rest})"]
    if core_budget.budget_paused(info):
        lines.append(f"paused:  {core_budget.budget_note(info)}; raise it with --usd or --clear")
    elif info.budget_reached:
        lines.append(f"reached: {core_budget.budget_note(info)}")
    return lines


def cmd_budget(args: argparse.Namespace) -> int:
    """Set or clear the budget, then print the queue's budget lines."""
    if (args.usd is None) == (not args.clear):
        raise CliError("queue budget: give --usd AMOUNT or --clear (one of them)")
    before = run_async(lambda db: db.read(lambda tx: tx.queues.get_queue(args.name)), args)
    info = run_async(lambda db: core_budget.set_budget(db, args.name, args.usd), args)
    print(f"queue {args.name!r}: " + ("budget cleared" if args.clear else "budget set"))
    for line in budget_lines(info):
        print(line)
    if core_budget.budget_paused(before) and not info.paused:
        print(f"queue {args.name!r} resumed: its budget no longer holds it")
    return EXIT_OK


@click.command(
    "budget",
    epilog=example(
        "batchdash queue budget papers --usd 25",
        "batchdash queue budget papers --clear",
    ),
)
@click.argument("name", type=NON_EMPTY)
@db_option()
@click.option(
    "--usd",
    type=Checked(non_negative_float, "USD"),
    default=None,
    help="Spend limit in USD (work plus QA); reaching it pauses the queue.",
)
@click.option("--clear", is_flag=True, help="Remove the budget (resumes a budget pause).")
def budget(**_: Any) -> Any:
    """Set or clear a queue's cost budget; workers stop claiming from it once it is spent."""
    return invoke(cmd_budget)
