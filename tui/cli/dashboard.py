"""The dashboard's commands: `batchdash` (no command) opens it; `batchdash demo` shows it off."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import click

from batchdash.core.actor import ORIGIN_ENV, Origin
from batchdash.core.config import config_path, file_settings
from batchdash.tui.cli.common import EXIT_OK, CliError, db_location, example, invoke


def run_dashboard(args: argparse.Namespace) -> int:
    """Open the dashboard on the chosen database (textual is imported only now)."""
    if args.refresh <= 0:
        raise CliError("--refresh must be positive")
    if args.once_watch is not None:
        raise CliError("--watch goes with --once (the dashboard refreshes itself: --refresh)")
    from batchdash.tui.app import BatchDashApp
    from batchdash.tui.toasts import bell_setting

    theme = _theme(args.theme)
    # Served to a browser, its actions are `web` ones in the events' audit trail.
    origin = Origin.WEB if os.environ.get(ORIGIN_ENV) == Origin.WEB else Origin.TUI
    # main() has already refused a missing database: the dashboard never creates one.
    app = BatchDashApp(
        db_location(args),
        refresh=args.refresh,
        read_only=args.read_only,
        origin=origin,
        bell=bell_setting(args.no_bell),
    )
    app.start_theme = theme
    app.run()
    return EXIT_OK


def _theme(flag: str | None) -> str | None:
    """The theme to start with: `--theme`, else the config file's; unknown ones are errors."""
    from textual.theme import BUILTIN_THEMES

    theme = flag or file_settings().theme
    if theme is None or theme in BUILTIN_THEMES:
        return theme
    where = "--theme" if flag else f"config file {config_path()}: theme"
    raise CliError(f"{where}: unknown theme {theme!r} (known: {', '.join(sorted(BUILTIN_THEMES))})")


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo: simulator, workers, jobs and a remote batch, watched live."""
    from batchdash.tui.demo import run_demo

    return run_demo(args)


@click.command(
    epilog=example(
        "batchdash demo",
        "batchdash demo --dir /tmp/demo --jobs 2000 --workers 4",
        "batchdash demo --db postgresql://me@db.example/demo",
    )
)
@click.option(
    "--db",
    "demo_db",
    metavar="PATH|URL",
    default=None,
    help="An empty database to run the demo on (default: a new file in the demo folder).",
)
@click.option(
    "--dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo files here.",
)
@click.option("--jobs", type=int, default=600, show_default=True, help="Local jobs to enqueue.")
@click.option("--workers", type=int, default=3, show_default=True, help="Sim workers to start.")
# For smoke tests: run the app headless for this long, then print `--once` and exit.
@click.option("--headless-for", type=float, default=None, hidden=True)
def demo(**_: Any) -> Any:
    """A live dashboard on a simulator with sim workers (no API key needed)."""
    # Only the demo's own --db counts: BATCHDASH_DB must never receive the demo's data.
    return invoke(cmd_demo, creates=True)
