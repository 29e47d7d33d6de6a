"""What every command module shares: `--db`, errors, exit codes, opening the store.

Each command group lives in its own `tui/cli/*.py` module and imports only this one; the
root group in `tui/cli/__init__.py` loads them lazily. A command's click callback returns an
`Invocation` (its handler and an argparse-style namespace) that `run()` executes, so the
handlers read `args.x` as before. Nothing here imports textual or openai: `batchdash --once`
and the plain commands stay fast; the dashboard imports textual only when it opens.

Exit codes: 0 success, 1 something needs attention (`--once`), 2 bad input or error,
130 interrupted (Ctrl-C).

Only the commands that add work (`init`, `enqueue`, `submit`, `worker`, `workers start`,
`demo`) create a database; every other command, the dashboard and `--once` refuse a
missing one, so a mistyped path never reads as "0 jobs, all clear". Known errors (bad
config, bad database file, SQLite errors, values out of range) become one
`batchdash: error: …` line here, in main(), never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from batchdash.core.db import (
    DbLocation,
    default_location,
    open_store,
    open_sync_store,
    parse_location,
    require_database,
)
from batchdash.core.db.ports import Store, SyncStore
from batchdash.core.errors import BatchdashError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_ERROR = 2
#: What a shell reports for a process killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141
#: What a shell reports for a process stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def db_location(args: argparse.Namespace) -> DbLocation:
    """The database chosen by `--db`, else BATCHDASH_DB or the config file, else the XDG
    default: a SQLite file, or a PostgreSQL server for a `postgresql://` URL."""
    value = getattr(args, "db", None)
    return parse_location(value) if value else default_location()


def creates_db(args: argparse.Namespace) -> bool:
    """Whether this command may create the database (see `invoke(creates=True)`)."""
    return getattr(args, "db_creates", None) is True


def run_async(coro_fn: Callable[[Store], Coroutine[Any, Any, T]], args: argparse.Namespace) -> T:
    """Open the store for the command, run `coro_fn(store)`, close it."""
    import asyncio  # here, not at the top: `--once` never needs an event loop

    async def main() -> T:
        db = await open_store(db_location(args), create=creates_db(args))
        try:
            return await coro_fn(db)
        finally:
            await db.close()

    return asyncio.run(main())


def open_sync(args: argparse.Namespace, *, readonly: bool = False) -> SyncStore:
    """Open the store synchronously (readers that must stay fast, like `--once`)."""
    return open_sync_store(db_location(args), readonly=readonly, create=creates_db(args))


class Group(click.Group):
    """A command group that names the closest command when one is mistyped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", False)  # a missing command is a one-line error
        super().__init__(*args, **kwargs)

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
    """`--db`, declared here once: on the root (with BATCHDASH_DB) and after every command.

    `batchdash --db X jobs list` and `batchdash jobs list --db X` both work; the one after
    the command wins. Only the root reads the environment, so an explicit `--db` before
    the command still beats BATCHDASH_DB.
    """
    return click.option(
        "--db",
        metavar="PATH|URL",
        default=None,
        envvar="BATCHDASH_DB" if root else None,
        show_envvar=root,
        help="SQLite file or postgresql://user@host/dbname (default: $BATCHDASH_DB, `db` in "
        "the config file, or ~/.local/share/batchdash/batchdash.db)",
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


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a parsed command line asks for: a handler and its arguments, run by `run()`."""

    handler: Callable[[argparse.Namespace], int]
    args: argparse.Namespace


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


def run(invocation: Invocation) -> int:
    """Run a parsed command; known errors become one `batchdash: error: …` line, exit 2."""
    args = invocation.args
    try:
        _check_setup(args)
        return invocation.handler(args)
    except BrokenPipeError:
        # `batchdash … | head` closed the pipe: stop quietly, as a shell tool should.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (CliError, BatchdashError, OSError) as exc:
        return _error(str(exc) or type(exc).__name__)
    except OverflowError as exc:
        return _error(f"a number is too large: {exc}")
    except RecursionError:
        return _error("data nested too deeply to process")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def usage_error(exc: click.ClickException) -> int:
    """A bad command line as one line (`argument --lease: must be > 0, got -1`), exit 2."""
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        param = exc.param
        if param is not None:
            longest = max(param.opts, key=len) if param.opts else param.name
            name = longest if longest and longest.startswith("-") else param.name
            print(f"batchdash: error: argument {name}: {exc.message}", file=sys.stderr)
            return EXIT_ERROR
    return _error(exc.format_message())


def _check_setup(args: argparse.Namespace) -> None:
    """Refuse a broken config or price file, and a missing database for read commands.

    Run before any command that touches the database, so a typo in the config is reported
    even when `--db` means the file's `db` is never needed.
    """
    if not hasattr(args, "db_creates"):
        return  # a command without a database (sim-server)
    from batchdash.core import config, pricing

    config.file_settings()
    pricing.price_table()
    location = db_location(args)  # an unsupported URL scheme is refused here
    if not creates_db(args) and location.path is not None:
        require_database(location.path)  # a server's database is checked when opened


def _error(message: str) -> int:
    print(f"batchdash: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def use_color(stream: Any = sys.stdout) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
