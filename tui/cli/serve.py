"""`batchdash serve`: the same dashboard in a browser (textual-serve, the `serve` extra).

Read-only unless `--allow-actions`. Loopback by default; any other address needs a token
(`--token` or BATCHDASH_SERVE_TOKEN). Each browser tab runs `batchdash` (the dashboard) as
a child process, which gets the database through BATCHDASH_DB, never its argv (a
PostgreSQL URL may hold a password), and records its actions as `web` ones.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shlex
import socket
import sys
from typing import Any

import click

from batchdash.core.actor import ORIGIN_ENV, Origin
from batchdash.tui.argtypes import NON_EMPTY
from batchdash.tui.cli.common import (
    EXIT_OK,
    CliError,
    db_location,
    db_option,
    example,
    invoke,
    open_sync,
)

#: Binding one of these listens on every address of the machine.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the database and the token, then serve until Ctrl+C."""
    if importlib.util.find_spec("textual_serve") is None:  # an optional extra
        raise CliError("serve needs textual-serve: pip install 'batchdash[serve]'")
    from batchdash.tui import serve

    token = args.token or os.environ.pop(serve.TOKEN_ENV, None) or None
    if token is None and not serve.is_loopback(args.host):
        raise CliError(
            f"--host {args.host} is reachable from other machines: give a token with --token "
            f"or {serve.TOKEN_ENV} (or bind 127.0.0.1)"
        )
    if args.refresh <= 0:
        raise CliError("--refresh must be positive")
    open_sync(args, readonly=True).close()  # a missing or broken database: say so now
    # Every dashboard process inherits this environment (textual-serve copies it).
    os.environ.pop(serve.TOKEN_ENV, None)
    os.environ["BATCHDASH_DB"] = db_location(args).setting
    os.environ[ORIGIN_ENV] = Origin.WEB
    server = serve.DashboardServer(_dashboard_command(args), args.host, args.port, token)

    def listening(port: int) -> None:
        mode = "actions allowed" if args.allow_actions else "read-only"
        print(f"serving the dashboard ({mode}) at {_url(args.host, port, token)}  (Ctrl+C stops)")
        sys.stdout.flush()

    try:
        asyncio.run(server.run(listening))
    except OSError as exc:  # the port is taken, the address is not this machine's, …
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


def _dashboard_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per browser tab: this Python, the dashboard."""
    argv = [sys.executable, "-m", "batchdash", "--refresh", str(args.refresh)]
    if not args.allow_actions:
        argv.append("--read-only")
    return shlex.join(argv)


def _url(host: str, port: int, token: str | None) -> str:
    """The address to open: the machine's name for a wildcard bind, the token if any."""
    name = socket.gethostname() if host in _WILDCARDS else host
    if ":" in name:  # an IPv6 address
        name = f"[{name}]"
    return f"http://{name}:{port}/" + (f"?token={token}" if token else "")


@click.command(
    epilog=example(
        "batchdash serve                      # http://127.0.0.1:8000/, read-only",
        "batchdash serve --allow-actions --port 9000",
        "BATCHDASH_SERVE_TOKEN=s3cret batchdash serve --host 0.0.0.0",
    )
)
@db_option()
@click.option("--host", type=NON_EMPTY, default="127.0.0.1", show_default=True, help="Address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free one).",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Let the browser retry, cancel, resume and pause (default: read-only).",
)
@click.option(
    "--token",
    metavar="T",
    default=None,
    help="Require this token (needed unless --host is loopback). Prefer "
    "$BATCHDASH_SERVE_TOKEN: other users of this machine can read a command line.",
)
def serve(**_: Any) -> Any:
    """Serve the dashboard to a browser (needs the serve extra)."""
    return invoke(cmd_serve)
