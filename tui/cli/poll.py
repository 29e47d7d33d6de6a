"""`batchdash poll`: the daemon that follows remote batches until stopped (or done), and
sends notices (`--notify CMD`, `--webhook URL`; see notify.py)."""

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
    if not (args.notify or args.webhook):

        async def run(db: Store) -> int:
            return await poll_loop(db, args.interval, until_done=args.until_done)

        return run_async(run, args)
    from batchdash.core.notices import rules_from_config
    from batchdash.tui.cli.notify import Notifier
    from batchdash.tui.cli.notify_channels import channels

    chosen = channels(args.notify, args.webhook)  # checked before the store opens
    rules = rules_from_config()

    async def run_notifying(db: Store) -> int:
        notifier = Notifier(db, chosen, rules)
        await notifier.start()
        try:
            return await poll_loop(
                db, args.interval, until_done=args.until_done, after_cycle=notifier.check
            )
        finally:
            await notifier.close()

    return run_async(run_notifying, args)


@click.command(
    epilog=example(
        "batchdash poll --until-done",
        "batchdash poll --interval 60",
        "batchdash poll --notify 'notify-send batchdash' --webhook https://example.com/hook",
        "BATCHDASH_WEBHOOK=https://hooks.example.com/T0K3N batchdash poll",
        "batchdash poll --notify \"sh -c 'jq -r .message >> notices.log'\"",
    )
)
@db_option()
@click.option(
    "--interval", type=float, default=10.0, show_default=True, help="Seconds between cycles."
)
@click.option("--until-done", is_flag=True, help="Exit once no batch is left to follow.")
@click.option(
    "--notify",
    metavar="CMD",
    multiple=True,
    help="Run CMD (split like a shell line, run without one) with each new notice's JSON "
    "on stdin: a batch ended, a queue's failures passed notify_failures, a worker went "
    "stale or dead. Repeatable.",
)
@click.option(
    "--webhook",
    metavar="URL",
    multiple=True,
    envvar="BATCHDASH_WEBHOOK",
    show_envvar=True,
    help="POST each new notice's JSON to URL (retried with backoff). Repeatable. A URL "
    "holding a token is best given in the environment, out of sight of `ps`.",
)
def poll(**_: Any) -> Any:
    """Follow remote batches and rescue stale jobs; optionally send notices."""
    return invoke(cmd_poll)
