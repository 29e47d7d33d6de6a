"""`batchdash stats`: per-stage duration percentiles (p50/p95) and failure counts per queue."""

from __future__ import annotations

import argparse
from typing import Any

import click

from batchdash.core.db.ports import Tx
from batchdash.core.stage_records import StageStat
from batchdash.tui.argtypes import NON_EMPTY
from batchdash.tui.cli.common import EXIT_OK, db_option, example, invoke, open_sync
from batchdash.tui.cli.views import write_json
from batchdash.tui.fmt import duration, table
from batchdash.tui.stage_text import stat_json


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the stage figures of every queue, or of `--queue`."""

    def read(tx: Tx) -> list[StageStat]:
        if args.queue is not None:
            tx.queues.require_queue(args.queue)
        return tx.stages.stage_stats(args.queue)

    with open_sync(args) as db:
        stats = db.read(read)
    if args.json:
        write_json({"stages": [stat_json(s) for s in stats]})
        return EXIT_OK
    if not stats:
        print("no stages recorded yet (handlers record them with `async with job.stage(...)`)")
        return EXIT_OK
    rows = (
        (s.queue, s.name, str(s.runs), str(s.failed), duration(s.p50), duration(s.p95))
        for s in stats
    )
    for line in table(("queue", "stage", "runs", "failed", "p50", "p95"), rows):
        print(line)
    return EXIT_OK


@click.command(epilog=example("batchdash stats", "batchdash stats --queue papers --json"))
@db_option()
@click.option("--queue", type=NON_EMPTY, default=None, help="Only this queue's stages.")
@click.option("--json", is_flag=True, help="As a JSON document.")
def stats(**_: Any) -> Any:
    """Per-stage duration percentiles (p50/p95 of finished runs) and failures per queue."""
    return invoke(cmd_stats)
