"""The `batchdash` command line: argument parsing and dispatch.

Each command group lives in its own `tui/cmd_*.py` module with a `register(subparsers)`
function. Nothing here imports textual or openai at module level: `batchdash --once` and
the plain commands stay fast; the dashboard imports textual only when it opens.

Exit codes: 0 success, 1 something needs attention (`--once`), 2 bad input or error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from core.store import Store, StoreError, SyncStore, default_db_path

T = TypeVar("T")

EXIT_OK = 0
EXIT_ATTENTION = 1
EXIT_ERROR = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def fail(message: str) -> NoReturn:
    """Abort the command with a one-line error."""
    raise CliError(message)


def db_path(args: argparse.Namespace) -> Path:
    """The database chosen by `--db`, else BATCHDASH_DB, else the XDG default."""
    value = getattr(args, "db", None)
    return Path(value).expanduser() if value else default_db_path()


def run_async(coro_fn: Callable[[Store], Coroutine[Any, Any, T]], args: argparse.Namespace) -> T:
    """Open the store for the command, run `coro_fn(store)`, close it."""

    async def main() -> T:
        db = await Store.open(db_path(args))
        try:
            return await coro_fn(db)
        finally:
            await db.close()

    return asyncio.run(main())


def open_sync(args: argparse.Namespace, *, readonly: bool = False) -> SyncStore:
    """Open the store synchronously (readers that must stay fast, like `--once`)."""
    return SyncStore.open(db_path(args), readonly=readonly)


def add_db_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """`--db` is accepted before or after the command (SUPPRESS keeps the earlier one)."""
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None if top else argparse.SUPPRESS,
        help="SQLite file (default: $BATCHDASH_DB or ~/.local/share/batchdash/batchdash.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    from tui import cmd_queue, cmd_workers

    parser = argparse.ArgumentParser(
        prog="batchdash",
        description="Track and steer bulk LLM work: remote OpenAI batches and local workers.",
    )
    add_db_option(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (cmd_queue, cmd_workers):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    try:
        return handler(args)
    except (CliError, StoreError, ValueError, OSError) as exc:
        return _error(str(exc) or type(exc).__name__)
    except sqlite3.OperationalError as exc:
        return _error(f"database {db_path(args)}: {exc}")
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> int:
    print(f"batchdash: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def use_color(stream: Any = sys.stdout) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


if __name__ == "__main__":
    sys.exit(main())
