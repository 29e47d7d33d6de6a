"""`batchdash serve`: the same dashboard in a browser (textual-serve, the `serve` extra).

Read-only unless `--allow-actions`. Loopback by default; any other address needs a token
(`--token` or BATCHDASH_SERVE_TOKEN), and so does a public URL other than loopback
(`--public-url`, behind a reverse proxy). Each browser tab runs `batchdash` (the dashboard) as
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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # tui.serve imports the optional serve extra
    from batchdash.tui.serve import PublicUrl

#: The environment variable of `--public-url`.
PUBLIC_URL_ENV = "BATCHDASH_SERVE_PUBLIC_URL"
#: Binding one of these listens on every address of the machine.
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the database and the token, then serve until Ctrl+C."""
    if importlib.util.find_spec("textual_serve") is None:  # an optional extra
        raise CliError("serve needs textual-serve: pip install 'batchdash[serve]'")
    from batchdash.tui import serve

    token = args.token or os.environ.pop(serve.TOKEN_ENV, None) or None
    public = _public_url(args.public_url)
    if token is None and not serve.is_loopback(args.host):
        raise CliError(
            f"--host {args.host} is reachable from other machines: give a token with --token "
            f"or {serve.TOKEN_ENV} (or bind 127.0.0.1)"
        )
    if token is None and public is not None and not serve.is_loopback(public.hostname):
        # The proxy makes a loopback bind reachable from anywhere.
        raise CliError(
            f"--public-url {public.base} is reachable from other machines: give a token with "
            f"--token or {serve.TOKEN_ENV}"
        )
    if args.refresh <= 0:
        raise CliError("--refresh must be positive")
    open_sync(args, readonly=True).close()  # a missing or broken database: say so now
    # Every dashboard process inherits this environment (textual-serve copies it).
    os.environ.pop(serve.TOKEN_ENV, None)
    os.environ["BATCHDASH_DB"] = db_location(args).setting
    os.environ[ORIGIN_ENV] = Origin.WEB
    server = serve.DashboardServer(_dashboard_command(args), args.host, args.port, token, public)

    def listening(port: int) -> None:
        mode = "actions allowed" if args.allow_actions else "read-only"
        url = f"{public.base}/" if public else _url(args.host, port)
        url += f"?token={token}" if token else ""
        # Behind a proxy the public URL names no port: say where the proxy must point.
        where = f"listening on {args.host}:{port}; " if public else ""
        print(f"serving the dashboard ({mode}) at {url}  ({where}Ctrl+C stops)")
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


def _public_url(text: str | None) -> PublicUrl | None:
    """`--public-url` checked (by tui.serve, which needs the serve extra)."""
    from batchdash.tui.serve import parse_public_url

    if text is None:
        return None
    try:
        return parse_public_url(text)
    except ValueError as exc:
        raise CliError(f"argument --public-url (or ${PUBLIC_URL_ENV}): {exc}") from None


def _url(host: str, port: int) -> str:
    """The address to open: the machine's name for a wildcard bind."""
    name = socket.gethostname() if host in _WILDCARDS else host
    if ":" in name:  # an IPv6 address
        name = f"[{name}]"
    return f"http://{name}:{port}/"


@click.command(
    epilog=example(
        "batchdash serve                      # http://127.0.0.1:8000/, read-only",
        "batchdash serve --allow-actions --port 9000",
        "BATCHDASH_SERVE_TOKEN=s3cret batchdash serve --host 0.0.0.0",
        "BATCHDASH_SERVE_TOKEN=s3cret batchdash serve --public-url https://dash.example.com",
        "    # behind nginx/caddy serving https://dash.example.com, proxying to 127.0.0.1:8000",
        "    # (forward the websocket: Upgrade and Connection headers)",
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
@click.option(
    "--public-url",
    metavar="URL",
    default=None,
    envvar=PUBLIC_URL_ENV,
    show_envvar=True,
    help="The URL browsers use when a reverse proxy is in front (https://dash.example.com, "
    "or https://example.com/dash if the proxy strips /dash): the page connects there and "
    "websockets from that origin are accepted. Needs a token unless it is loopback.",
)
def serve(**_: Any) -> Any:
    """Serve the dashboard to a browser (needs the serve extra)."""
    return invoke(cmd_serve)
