"""`batchdash poll`: the daemon that follows remote batches until stopped (or done)."""

from __future__ import annotations

import argparse
from typing import Any

import click

from batchdash.core.db.ports import Store
from batchdash.tui.cli.common import CliError, db_option, example, invoke, run_async
from batchdash.tui.cli.polling import poll_loop


def cmd_poll(args: argparse.Namespace) -> int:
    """Poll cycles every --interval seconds until SIGINT/SIGTERM (or --until-done).

    One cycle alone is `batchdash --once --poll` (the dashboard's read path).
    """
    if args.interval <= 0:
        raise CliError("--interval must be > 0")

    async def run(db: Store) -> int:
        return await poll_loop(db, args.interval, until_done=args.until_done)

    return run_async(run, args)


@click.command(epilog=example("batchdash poll --until-done", "batchdash poll --interval 60"))
@db_option()
@click.option(
    "--interval", type=float, default=10.0, show_default=True, help="Seconds between cycles."
)
@click.option("--until-done", is_flag=True, help="Exit once no batch is left to follow.")
def poll(**_: Any) -> Any:
    """Follow remote batches and rescue stale jobs."""
    return invoke(cmd_poll)
