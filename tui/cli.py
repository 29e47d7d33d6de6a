"""The `batchdash` command line: argument parsing and dispatch.

Each command group lives in its own `tui/cmd_*.py` module with a `register(subparsers)`
function. Nothing here imports textual or openai at module level: `batchdash --once` and
the plain commands stay fast; the dashboard imports textual only when it opens.

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
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from batchdash.core.db import default_db_path, open_store, open_sync_store, require_database
from batchdash.core.db.ports import Store, SyncStore
from batchdash.core.errors import StoreError
from batchdash.tui.argtypes import OneLineParser

T = TypeVar("T")

EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_ERROR = 2
#: What a shell reports for a process killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141
#: What a shell reports for a process stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Abort the command with a one-line error."""
    raise CliError(message)


def db_path(args: argparse.Namespace) -> Path:
    """The database chosen by `--db`, else BATCHDASH_DB, else the XDG default."""
    value = getattr(args, "db", None)
    return Path(value).expanduser() if value else default_db_path()


def creates_db(args: argparse.Namespace) -> bool:
    """Whether this command may create the database (see `add_db_option(creates=True)`)."""
    return getattr(args, "db_creates", None) is True


def run_async(coro_fn: Callable[[Store], Coroutine[Any, Any, T]], args: argparse.Namespace) -> T:
    """Open the store for the command, run `coro_fn(store)`, close it."""
    import asyncio  # here, not at the top: `--once` never needs an event loop

    async def main() -> T:
        db = await open_store(db_path(args), create=creates_db(args))
        try:
            return await coro_fn(db)
        finally:
            await db.close()

    return asyncio.run(main())


def open_sync(args: argparse.Namespace, *, readonly: bool = False) -> SyncStore:
    """Open the store synchronously (readers that must stay fast, like `--once`)."""
    return open_sync_store(db_path(args), readonly=readonly, create=creates_db(args))


def add_db_option(
    parser: argparse.ArgumentParser, *, top: bool = False, creates: bool = False
) -> None:
    """`--db` is accepted before or after the command (SUPPRESS keeps the earlier one).

    Only a command registered with `creates=True` may create a missing database; the
    others exit 2 saying there is none.
    """
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="SQLite file (default: $BATCHDASH_DB, `db` in the config file, or "
        "~/.local/share/batchdash/batchdash.db)",
    )
    if not top:
        parser.set_defaults(db_creates=creates)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    from batchdash.tui import cmd_batches, cmd_dashboard, cmd_qa, cmd_queue, cmd_workers

    parser = OneLineParser(
        prog="batchdash",
        description="Track and steer bulk LLM work: remote OpenAI batches and local workers.",
    )
    add_db_option(parser, top=True)
    _add_dashboard_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (cmd_queue, cmd_workers, cmd_dashboard, cmd_qa, cmd_batches):
        module.register(commands)
    return parser


def _add_dashboard_options(parser: argparse.ArgumentParser) -> None:
    """Top-level flags: with no command, `batchdash` opens the dashboard (or prints --once)."""
    from batchdash import __version__

    parser.add_argument("--version", action="version", version=f"batchdash {__version__}")
    group = parser.add_argument_group("dashboard (no COMMAND)")
    group.add_argument("--once", action="store_true", help="print the picture once and exit")
    group.add_argument("--json", dest="once_json", action="store_true", help="--once as JSON")
    group.add_argument(
        "--section",
        dest="once_sections",
        action="append",
        choices=("overview", "queues", "batches", "workers", "qa"),
        help="--once text: only these sections (repeatable)",
    )
    group.add_argument(
        "--poll", dest="once_poll", action="store_true", help="--once: poll remote batches first"
    )
    group.add_argument(
        "--refresh", type=float, default=1.0, metavar="S", help="seconds between refreshes (1)"
    )
    group.add_argument(
        "--read-only", action="store_true", help="hide and refuse every action that writes"
    )


def _once_parser() -> argparse.ArgumentParser:
    """Only the top-level flags: `--once` from cron skips importing every command module."""
    parser = OneLineParser(prog="batchdash")
    add_db_option(parser, top=True)
    _add_dashboard_options(parser)
    return parser


def _no_command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    """`batchdash` alone opens the dashboard; with `--once` it prints the picture."""
    # Imported here: the --once path must never pull in textual.
    if args.once:
        from batchdash.tui.once import run_once

        return run_once
    from batchdash.tui.cmd_dashboard import run_dashboard

    return run_dashboard


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    words = sys.argv[1:] if argv is None else argv
    parser = _once_parser() if "--once" in words else build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "func", None) or _no_command(args)
    try:
        _check_setup(args)
        return handler(args)
    except BrokenPipeError:
        # `batchdash … | head` closed the pipe: stop quietly, as a shell tool should.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (CliError, StoreError, ValueError, OSError) as exc:
        return _error(str(exc) or type(exc).__name__)
    except OverflowError as exc:
        return _error(f"a number is too large: {exc}")
    except RecursionError:
        return _error("data nested too deeply to process")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _check_setup(args: argparse.Namespace) -> None:
    """Refuse a broken config or price file, and a missing database for read commands.

    Run before any command that touches the database, so a typo in the config is reported
    even when `--db` means the file's `db` is never needed.
    """
    if getattr(args, "func", None) is not None and not hasattr(args, "db_creates"):
        return  # a command without a database (sim-server)
    from batchdash.core import config, pricing

    config.file_settings()
    pricing.price_table()
    if not creates_db(args):
        require_database(db_path(args))


def _error(message: str) -> int:
    print(f"batchdash: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def use_color(stream: Any = sys.stdout) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
