"""Which jobs a command means: `--status`, `--queue`, `--filter` and job ids.

Shared by the commands that select jobs (`jobs list`, `retry`, `cancel`, `resume`,
`export`): the same options, parsed into one `JobFilter` the same way everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from batchdash.core.filters import FilterError, parse_filter
from batchdash.core.models import JobFilter, JobStatus
from batchdash.tui.argtypes import NON_EMPTY
from batchdash.tui.cli.common import CliError, F

STATUS_NAMES = [s.value for s in JobStatus]


def job_filter(args: argparse.Namespace) -> JobFilter:
    """The jobs `--filter`, `--status`, `--queue` and ids select (all of them must match)."""
    try:
        flt = parse_filter(args.filter or "")
    except FilterError as exc:
        raise CliError(f"--filter: {exc}") from None
    given = {
        "statuses": (tuple(args.status), "--status", "status:"),
        "queues": (tuple(args.queue), "--queue", "queue:"),
        "ids": (tuple(getattr(args, "ids", ()) or ()), "job ids", "id:"),
    }
    for field, (values, option, qualifier) in given.items():
        if values and getattr(flt, field):
            raise CliError(f"--filter {qualifier} and {option} both given: use one of them")
    narrowed: dict[str, Any] = {field: values for field, (values, _, _) in given.items() if values}
    return replace(flt, **narrowed)


def status_option(help_text: str = "Only jobs with this status (repeatable).") -> Callable[[F], F]:
    """`--status`, repeatable."""
    return click.option("--status", multiple=True, type=click.Choice(STATUS_NAMES), help=help_text)


def filter_option(fn: F) -> F:
    """`--filter`: the dashboard's filter language, ANDed with the other options."""
    return click.option(
        "--filter",
        metavar="TEXT",
        default=None,
        help="The dashboard's filter language, e.g. 'status:failed key:tr-* score<6'.",
    )(fn)


def queue_option() -> Callable[[F], F]:
    """`--queue`, repeatable."""
    return click.option(
        "--queue", multiple=True, type=NON_EMPTY, help="Only jobs of this queue (repeatable)."
    )
