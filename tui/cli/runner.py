"""Running a parsed command line, without click: errors, exit codes, opening the store.

`common.py` builds click commands on top of this; `batchdash --once` (tui/cli/__init__.py)
parses its few options itself and comes straight here, so a cron check never imports click.
Known errors (bad config, bad database file, SQLite errors, values out of range) become one
`batchdash: error: …` line here, in run(), never a traceback.

Exit codes: 0 success, 1 something needs attention (`--once`), 2 bad input or error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.db import (
    DbLocation,
    default_location,
    open_store,
    open_sync_store,
    parse_location,
    require_database,
)
from batchdash.core.errors import BatchdashError

if TYPE_CHECKING:
    from batchdash.core.db.ports import Store, SyncStore

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


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a parsed command line asks for: a handler and its arguments, run by `run()`."""

    handler: Callable[[argparse.Namespace], int]
    args: argparse.Namespace


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
        return error(str(exc) or type(exc).__name__)
    except OverflowError as exc:
        return error(f"a number is too large: {exc}")
    except RecursionError:
        return error("data nested too deeply to process")
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


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


def error(message: str) -> int:
    """Print `message` as the one `batchdash: error: …` line; return exit code 2."""
    print(f"batchdash: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def use_color(stream: Any = sys.stdout) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
