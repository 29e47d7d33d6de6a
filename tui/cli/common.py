"""What every command module shares: `--db`, click helpers, errors, exit codes, the store.

Each command group lives in its own `tui/cli/*.py` module and imports only this one; the
root group in `tui/cli/root.py` loads them lazily. A command's click callback returns an
`Invocation` (its handler and an argparse-style namespace) that `run()` executes, so the
handlers read `args.x` as before. The click-free half (run, errors, exit codes, opening the
store) lives in `runner.py`, which `batchdash --once` uses without click; it is re-exported
here. Nothing here imports textual or openai: the dashboard imports textual only when it
opens.

Only the commands that add work (`init`, `enqueue`, `submit`, `worker`, `workers start`,
`demo`) create a database; every other command, the dashboard and `--once` refuse a
missing one, so a mistyped path never reads as "0 jobs, all clear".
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchdash.tui.cli.options import DB, RootOption
from batchdash.tui.cli.runner import (
    EXIT_ATTENTION,
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    Invocation,
    creates_db,
    db_location,
    error,
    open_sync,
    run,
    run_async,
    use_color,
)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "EXIT_ATTENTION",
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "CliError",
    "Group",
    "Invocation",
    "click_option",
    "creates_db",
    "db_location",
    "db_option",
    "example",
    "invoke",
    "open_sync",
    "output_option",
    "run",
    "run_async",
    "usage_error",
    "use_color",
]


class Group(click.Group):
    """A command group that names the closest command when one is mistyped.

    `lazy` maps more command names to `module:attribute` under batchdash.tui.cli, imported
    only when named: a topic's commands live in its own module (`queue budget` in
    budget.py) without the group's module importing it.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", False)  # a missing command is a one-line error
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The group's own commands and its lazy ones, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A lazy command is imported now (and only now)."""
        where = self.lazy.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = where.split(":")
        command: click.Command = getattr(
            importlib.import_module(f"batchdash.tui.cli.{module}"), attribute
        )
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """`batchdash jobs` alone names the commands it needs one of."""
        if not args and not self.invoke_without_command:
            ctx.fail(f"{ctx.command_path} needs a command: {', '.join(self.list_commands(ctx))}")
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Like click's, but `batchdash jbos` says "did you mean 'jobs'?"."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"no such command {name!r}{hint}")
        return super().resolve_command(ctx, args)


def db_option(*, root: bool = False) -> Callable[[F], F]:
    """`--db` (declared in options.py): on the root (with BATCHDASH_DB) and after every command.

    `batchdash --db X jobs list` and `batchdash jobs list --db X` both work; the one after
    the command wins. Only the root reads the environment, so an explicit `--db` before
    the command still beats BATCHDASH_DB.
    """
    return click_option(DB, root=root)


def click_option(option: RootOption, *, root: bool = True) -> Callable[[F], F]:
    """The click declaration of an option of the table in options.py (which --once reads)."""
    if option.flag:
        return click.option(option.name, option.dest, is_flag=True, help=option.help)
    envvar = option.envvar if root else None
    return click.option(
        option.name,
        option.dest,
        type=click.Choice(option.choices) if option.choices else option.convert,
        multiple=option.multiple,
        default=option.default,
        metavar=option.metavar,
        envvar=envvar,
        show_envvar=envvar is not None,
        help=option.help,
    )


def output_option() -> Callable[[F], F]:
    """`-o/--output FILE` of the commands that write files (stdout without it)."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="File to write (default: stdout).",
    )


def example(*lines: str) -> str:
    """A command's epilog: its example command lines, shown under its --help."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


def invoke(
    handler: Callable[[argparse.Namespace], int], *, creates: bool | None = False, **extra: Any
) -> Invocation:
    """The Invocation of the current click command: the root's options, then its own.

    `creates=True` lets the command create a missing database; `None` marks a command
    without a database (sim-server).
    """
    ctx = click.get_current_context()
    root = ctx.find_root().params
    values = {**root, **ctx.params, **extra, "db": ctx.params.get("db") or root.get("db")}
    if creates is not None:
        values["db_creates"] = creates
    return Invocation(handler, argparse.Namespace(**values))


def usage_error(exc: click.ClickException) -> int:
    """A bad command line as one line (`argument --lease: must be > 0, got -1`), exit 2."""
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        param = exc.param
        if param is not None:
            longest = max(param.opts, key=len) if param.opts else param.name
            name = longest if longest and longest.startswith("-") else param.name
            print(f"batchdash: error: argument {name}: {exc.message}", file=sys.stderr)
            return EXIT_ERROR
    return error(exc.format_message())
