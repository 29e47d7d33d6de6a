"""The `batchdash` command line: the root command, which loads each command group lazily.

`batchdash` alone opens the dashboard; `batchdash --once` prints its picture. Command
modules are imported only when their command is named, so `--once` from cron never loads
them (nor textual). Errors on the command line are one `batchdash: error: …` line, exit 2.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from batchdash.tui.cli.common import (
    EXIT_INTERRUPTED,
    Group,
    Invocation,
    db_option,
    example,
    invoke,
    run,
    usage_error,
)

#: Each command's name and where it lives (`module:attribute` under batchdash.tui.cli).
COMMANDS = {
    "init": "queue:init",
    "enqueue": "queue:enqueue",
    "jobs": "jobs:jobs",
    "retry": "queue:retry",
    "cancel": "queue:cancel",
    "resume": "queue:resume",
    "queue": "queue:queue_group",
    "export": "export:export",
    "worker": "workers:worker",
    "workers": "workers:workers",
    "submit": "batches:submit",
    "batches": "batches:batches_group",
    "poll": "poll:poll",
    "sim-server": "sim:sim_server",
    "qa": "qa:qa_group",
    "demo": "dashboard:demo",
}


class RootGroup(Group):
    """The root command: subcommands imported on first use; `main()` returns an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, without importing any command module."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module now (and only now)."""
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where.split(":")
        command: click.Command = getattr(
            importlib.import_module(f"batchdash.tui.cli.{module}"), attribute
        )
        return command

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> int:  # type: ignore[override]
        """Parse, run, and return the exit code; never a click usage block or traceback."""
        try:
            result = super().main(args, prog_name or "batchdash", standalone_mode=False, **extra)
        except click.ClickException as exc:
            return usage_error(exc)
        except click.Abort:
            return EXIT_INTERRUPTED
        if isinstance(result, Invocation):
            return run(result)
        return int(result or 0)


@click.group(
    cls=RootGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=example(
        "batchdash --db work.db                 # the dashboard",
        "batchdash --once --section workers     # its picture, once (exit 1: needs attention)",
        "batchdash jobs list --filter 'status:failed'",
    ),
)
@db_option(root=True)
@click.version_option(package_name="batchdash", message="batchdash %(version)s")
@click.option("--once", is_flag=True, help="Print the dashboard's picture once and exit.")
@click.option("--json", "once_json", is_flag=True, help="--once as JSON.")
@click.option(
    "--section",
    "once_sections",
    multiple=True,
    type=click.Choice(("overview", "queues", "batches", "workers", "qa")),
    help="--once text: only these sections (repeatable).",
)
@click.option("--poll", "once_poll", is_flag=True, help="--once: poll remote batches first.")
@click.option(
    "--refresh", type=float, default=1.0, metavar="S", help="Seconds between refreshes (1)."
)
@click.option("--read-only", is_flag=True, help="Hide and refuse every action that writes.")
@click.pass_context
def main(ctx: click.Context, /, **_: Any) -> Invocation | None:
    """Track and steer bulk LLM work: remote OpenAI batches and local workers.

    With no COMMAND, open the dashboard (or print it once with --once).
    """
    if ctx.invoked_subcommand is not None:
        return None
    # Imported here: the --once path must never pull in textual or the command modules.
    if ctx.params["once"]:
        from batchdash.tui.once import run_once

        return invoke(run_once)
    from batchdash.tui.cli.dashboard import run_dashboard

    return invoke(run_dashboard)


__all__ = ["main"]
