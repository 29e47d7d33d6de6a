"""The dashboard's commands: `batchdash` (no command) opens it; `batchdash demo` shows it off."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from batchdash.tui.cli.common import EXIT_OK, CliError, add_db_option, db_path


def register(commands: Any) -> None:
    """Add `demo` to the top-level parser."""
    p = commands.add_parser(
        "demo", help="a live dashboard on a simulator with sim workers (no API key needed)"
    )
    add_db_option(p, creates=True)
    p.add_argument("--dir", type=Path, default=None, help="keep the demo files here")
    p.add_argument("--jobs", type=int, default=600, help="local jobs to enqueue (default 600)")
    p.add_argument("--workers", type=int, default=3, help="sim workers to start (default 3)")
    # For smoke tests: run the app headless for this long, then print `--once` and exit.
    p.add_argument("--headless-for", type=float, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)


def run_dashboard(args: argparse.Namespace) -> int:
    """Open the dashboard on the chosen database (textual is imported only now)."""
    if args.refresh <= 0:
        raise CliError("--refresh must be positive")
    from batchdash.tui.app import BatchDashApp

    # main() has already refused a missing database: the dashboard never creates one.
    BatchDashApp(db_path(args), refresh=args.refresh, read_only=args.read_only).run()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo: simulator, workers, jobs and a remote batch, watched live."""
    from batchdash.tui.demo import run_demo

    return run_demo(args)
