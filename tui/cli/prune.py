"""`batchdash prune`: delete finished jobs finished before a cutoff, in short transactions.

Ctrl-C takes effect between two transactions: the one in progress commits (a few
milliseconds), and the command says how much was removed before it stopped, exit 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

import click

from batchdash.core.db.ports import Tx
from batchdash.core.prune import PRUNABLE_STATUSES, Pruned, PruneScope, prune
from batchdash.tui.argtypes import DURATION, NON_EMPTY
from batchdash.tui.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    db_option,
    example,
    invoke,
    open_sync,
)
from batchdash.tui.cli.progress import on_terminal, progress_bar


def cmd_prune(args: argparse.Namespace) -> int:
    """Count what the scope selects; with --dry-run stop there, else delete it."""
    scope = PruneScope(
        cutoff=time.time() - args.older_than,
        statuses=tuple(args.status) or PRUNABLE_STATUSES,
        queues=tuple(args.queue),
    )
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(scope.cutoff))
    with open_sync(args) as db:

        def require_queues(tx: Tx) -> None:
            for name in scope.queues:
                tx.queues.require_queue(name)

        db.read(require_queues)
        if args.dry_run:
            counted = db.read(lambda tx: tx.prune.count_prunable(scope))
            print(f"would remove {_pruned_line(counted, since)}; dry run, nothing removed")
            return EXIT_OK
        # The bar's total costs a count of everything prunable: only when a bar is drawn.
        total = db.read(lambda tx: tx.prune.count_prunable(scope)).jobs if on_terminal() else None
        stopping = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stopping.set())
        try:
            with progress_bar("pruning jobs", total) as done:
                removed, stopped = prune(
                    db, scope, stop=stopping.is_set, on_progress=lambda p: done(p.jobs)
                )
        finally:
            signal.signal(signal.SIGINT, previous)
    if stopped:
        print(
            f"interrupted: removed {_pruned_line(removed, since)} before the interrupt; "
            "the rest is untouched",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f"removed {_pruned_line(removed, since)}")
    return EXIT_OK


def _pruned_line(pruned: Pruned, since: str) -> str:
    """What a prune removed and its cutoff, as the command prints it."""
    return f"{pruned.describe()} (finished before {since})"


@click.command(
    "prune",
    epilog=example(
        "batchdash prune --older-than 30d --dry-run",
        "batchdash prune --older-than 30d --status succeeded --queue papers",
    ),
)
@db_option()
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Jobs that finished at least this long ago (30d, 12h, 90m).",
)
@click.option(
    "--status",
    multiple=True,
    type=click.Choice(PRUNABLE_STATUSES),
    help="Only jobs with this status (repeatable; default: all three finished ones).",
)
@click.option(
    "--queue", multiple=True, type=NON_EMPTY, help="Only jobs of this queue (repeatable)."
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
def prune_command(**_: Any) -> Any:
    """Delete finished jobs (never pending or running ones) with their payloads, results,
    events, QA verdicts, tags and batch lines, 1,000 per transaction; then the finished
    batches (results in, last changed before the cutoff) whose jobs are all gone. Counts,
    spend and throughput figures follow what is left."""
    return invoke(cmd_prune)
