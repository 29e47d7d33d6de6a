"""`batchdash queue limit` and `queue show`: rate limits shared by every worker, and one
queue's state (pause, job counts, limits with their effective rate, use and waits).

The commands join the `queue` group of `queue.py`; the bucket rules are `core/ratelimit.py`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import click

from batchdash.core.budget import budget_lines
from batchdash.core.db.ports import Tx
from batchdash.core.models import PAUSE_MANUAL, JobStatus, QueueInfo
from batchdash.core.ratelimit import DEFAULT_COOLDOWN, LimitStatus
from batchdash.tui.argtypes import NON_EMPTY, POSITIVE_FLOAT, POSITIVE_INT
from batchdash.tui.cli.common import EXIT_OK, CliError, db_option, example, invoke, open_sync
from batchdash.tui.fmt import duration, limit_text, table, throttle_text

# --------------------------------------------------------------------------- commands


def _models(model: str) -> str:
    return f"model {model}" if model else "all models"


def cmd_queue_limit(args: argparse.Namespace) -> int:
    """Set, change or (with --clear) remove a queue's rate limit."""
    if args.clear:
        if args.rpm is not None or args.tpm is not None:
            raise CliError("queue limit: --clear takes no --rpm or --tpm")
        return _clear(args)
    if args.rpm is None and args.tpm is None:
        raise CliError("queue limit: give --rpm N and/or --tpm N (or --clear to remove the limit)")
    model = args.model or ""

    def run(tx: Tx) -> None:
        now = time.time()
        tx.queues.ensure_queue(args.name, now)
        tx.limits.set_limit(args.name, model, args.rpm, args.tpm, args.cooldown, now)

    with open_sync(args) as db:
        db.write(run)
    limit = ", ".join(
        f"{n:,} {unit}" for n, unit in ((args.rpm, "rpm"), (args.tpm, "tpm")) if n is not None
    )
    print(f"queue {args.name!r}: {_models(model)} limited to {limit} (shared by every worker)")
    return EXIT_OK


def _clear(args: argparse.Namespace) -> int:
    """Remove one model's limit (--model) or every limit of the queue."""

    def run(tx: Tx) -> int:
        tx.queues.require_queue(args.name)
        return tx.limits.clear_limit(args.name, args.model, time.time())

    with open_sync(args) as db:
        gone = db.write(run)
    if not gone:
        what = f"for model {args.model}" if args.model else "to remove"
        raise CliError(f"queue {args.name!r} has no rate limit {what}")
    print(f"queue {args.name!r}: removed {gone} rate limit{'s' if gone != 1 else ''}")
    return EXIT_OK


def cmd_queue_show(args: argparse.Namespace) -> int:
    """Print one queue: paused or not (and why), its jobs per status, budget and limits."""

    def read(tx: Tx) -> tuple[QueueInfo, list[LimitStatus]]:
        return tx.queues.get_queue(args.name), tx.limits.limit_status(time.time(), args.name)

    with open_sync(args, readonly=True) as db:
        info, limits = db.read(read)
    state = f"paused ({info.pause_reason or PAUSE_MANUAL})" if info.paused else "running"
    print(f"queue {info.name}: {state}")
    counts = [f"{info.counts.get(s, 0):,} {s}" for s in JobStatus]
    print(f"jobs: {info.total:,} ({', '.join(counts)})")
    for line in [*budget_lines(info), *limit_lines(info.name, limits)]:
        print(line)
    return EXIT_OK


def limit_lines(queue: str, limits: list[LimitStatus]) -> list[str]:
    """The rate-limit part of `queue show`: a table, or how to set one."""
    if not limits:
        return [f"rate limits: none (set one: batchdash queue limit {queue} --rpm N --tpm N)"]
    header = ("MODEL", "LIMIT", "RATE", "USE/MIN", "WAITING", "WAITED/MIN", "MAX WAIT")
    rows = [
        (
            s.model or "(all)",
            limit_text(s),
            throttle_text(s) or "100%",
            f"{s.used_rpm:,} req, {s.used_tpm:,} tok",
            f"{s.waiting:,}",
            f"{s.waits:,}",
            duration(s.wait_max) if s.waits else "-",
        )
        for s in limits
    ]
    return ["rate limits (shared by every worker; use and waits over the last minute):"] + [
        f"  {line}" for line in table(header, rows)
    ]


# --------------------------------------------------------------------------- command line


@click.command(
    "limit",
    epilog=example(
        "batchdash queue limit papers --rpm 500 --tpm 200000",
        "batchdash queue limit papers --rpm 60 --model gpt-4o-mini",
        "batchdash queue limit papers --clear",
    ),
)
@click.argument("name", type=NON_EMPTY)
@db_option()
@click.option("--rpm", type=POSITIVE_INT, default=None, help="Requests per minute, all workers.")
@click.option("--tpm", type=POSITIVE_INT, default=None, help="Tokens per minute, all workers.")
@click.option(
    "--model",
    metavar="MODEL",
    type=NON_EMPTY,
    default=None,
    help="Limit only the jobs asking for this model (default: all of the queue's jobs).",
)
@click.option(
    "--cooldown",
    type=POSITIVE_FLOAT,
    default=DEFAULT_COOLDOWN,
    show_default=True,
    help="After a 429 the rate is halved for max(retry-after, this), then regains 10% of "
    "the limit every this many seconds.",
)
@click.option("--clear", is_flag=True, help="Remove the limit (of --model, or every one).")
def limit(**_: Any) -> Any:
    """Limit a queue's requests and tokens per minute, shared by every worker."""
    return invoke(cmd_queue_limit, creates=True)


@click.command("show", epilog=example("batchdash queue show papers"))
@click.argument("name", type=NON_EMPTY)
@db_option()
def show(**_: Any) -> Any:
    """Show a queue: paused or not, its jobs, its rate limits with their use and waits."""
    return invoke(cmd_queue_show)
