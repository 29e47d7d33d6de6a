"""Which jobs a command means: `--status`, `--queue`, `--filter`, job ids, `--since` and
`--until`; and `--tag` for the commands that add work.

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
from batchdash.core.tags import TagError, check_tags
from batchdash.tui.argtypes import NON_EMPTY, WHEN
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
    since, until = time_window(args)
    return replace(flt, **narrowed, created_after=since, created_before=until)


def time_window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """`--since` and `--until` as epoch seconds (None when not given); a window that ends
    before it starts is a one-line error, not an empty list."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since is not None and until is not None and since >= until:
        raise CliError("--since is not before --until: nothing could match")
    return since, until


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


def time_options(what: str) -> Callable[[F], F]:
    """`--since` and `--until`: only `what` created in that span (each one optional)."""

    def decorate(fn: F) -> F:
        for name, side in (("--until", "before"), ("--since", "at or after")):
            fn = click.option(
                name,
                type=WHEN,
                default=None,
                help=f"Only {what} created {side} this time: ISO (2026-11-29, "
                "2026-11-29T08:00, local unless it has an offset) or an age (2h, 7d).",
            )(fn)
        return fn

    return decorate


def tag_option(what: str) -> Callable[[F], F]:
    """`--tag`, repeatable: labels to put on the work a command adds."""
    return click.option(
        "--tag",
        multiple=True,
        metavar="TAG",
        help=f"Tag {what} (repeatable); select them later with --filter tag:TAG.",
    )


def tags_given(args: argparse.Namespace) -> tuple[str, ...]:
    """The `--tag` values, checked (a bad one is a one-line error naming it)."""
    try:
        return check_tags(args.tag)
    except TagError as exc:
        raise CliError(f"--tag: {exc}") from None
