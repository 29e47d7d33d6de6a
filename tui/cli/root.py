"""The click root command: its options come from options.py, subcommands load lazily.

`batchdash` alone opens the dashboard; `batchdash --once` prints its picture (a plain
`--once` line never gets here: tui/cli/__init__.py runs it without click). Command modules
are imported only when their command is named. Errors on the command line are one
`batchdash: error: …` line, exit 2.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click

from batchdash.tui.cli.common import (
    EXIT_INTERRUPTED,
    Group,
    Invocation,
    click_option,
    example,
    invoke,
    run,
    usage_error,
)
from batchdash.tui.cli.options import COMMANDS, DB, ROOT_OPTIONS


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


def _root_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate `command` with the table's options, --version right after --db as before."""
    for option in reversed(ROOT_OPTIONS):
        if option is DB:
            command = click.version_option(
                package_name="batchdash", message="batchdash %(version)s"
            )(command)
        command = click_option(option)(command)
    return command


@click.group(
    cls=RootGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=example(
        "batchdash --db work.db                 # the dashboard",
        "batchdash --once --section workers     # its picture, once (exit 1: needs attention)",
        "batchdash --once --watch 60 >> status.log   # again every minute, until Ctrl-C",
        "batchdash jobs list --filter 'status:failed'",
    ),
)
@_root_options
@click.pass_context
def root(ctx: click.Context, /, **_: Any) -> Invocation | None:
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
