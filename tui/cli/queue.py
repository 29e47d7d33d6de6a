"""Queue commands: init, enqueue, retry, cancel, resume, and queue pause/resume."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from batchdash.core import budget, cost_estimate, queue
from batchdash.core.actor import Actor, Origin
from batchdash.core.config import PROVIDER_NAMES
from batchdash.core.db.ports import Tx
from batchdash.core.endpoints import Endpoint, named
from batchdash.core.errors import DatabaseError
from batchdash.core.handlers import resolve
from batchdash.core.inputs import STYLE_PROVIDERS, InputError, JobFile, read_job_file
from batchdash.tui.argtypes import INT64, NON_EMPTY, POSITIVE_FLOAT, POSITIVE_INT
from batchdash.tui.cli.common import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    Group,
    db_location,
    db_option,
    example,
    invoke,
    open_sync,
    run_async,
)
from batchdash.tui.cli.progress import EVERY, count_lines, on_terminal, progress_bar
from batchdash.tui.cli.selection import (
    filter_option,
    job_filter,
    queue_option,
    status_option,
    tag_option,
    tags_given,
)

# --------------------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace) -> int:
    """Create or migrate the database and say where it is."""
    with open_sync(args):
        pass
    print(f"database ready: {db_location(args).display}")
    return EXIT_OK


def cmd_enqueue(args: argparse.Namespace) -> int:
    """Read the whole file first; enqueue it in one transaction or not at all."""
    if args.handler is not None:
        resolve(args.handler)  # unknown handler: one-line error before touching the DB
    endpoint = named(args.endpoint) if args.endpoint else None  # unknown: lists the known
    try:
        job_file = _read_with_progress(args)
        if args.estimate:  # the real-time price: workers call the model one request at a time
            payloads = (job.payload for job in job_file.jobs)
            estimate = cost_estimate.estimate_payloads(payloads, batch=False)
            print("\n".join(cost_estimate.estimate_lines(estimate)))
            return EXIT_OK
        handler = args.handler or _default_handler(args.file, job_file, endpoint)
        _check_endpoint(handler, endpoint)
        result = _enqueue_interruptibly(args, job_file, handler)
    except InputError as exc:
        for line in exc.lines():
            print(f"batchdash: error: {line}", file=sys.stderr)
        print(f"batchdash: nothing enqueued from {args.file}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(interrupted_message(None, args.queue), file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.interrupted:
        print(interrupted_message(result.inserted, args.queue), file=sys.stderr)
        return EXIT_INTERRUPTED
    print(
        f"enqueued {result.inserted} jobs into {args.queue!r} with handler {handler}"
        + (f" ({result.skipped} already there, skipped)" if result.skipped else "")
    )
    return EXIT_OK


def _read_with_progress(args: argparse.Namespace) -> JobFile:
    """Read and check the whole file, with a bar on a terminal (rate and ETA over lines)."""
    total = count_lines(args.file) if on_terminal() else None
    with progress_bar(f"reading {args.file.name}", total) as done:

        def on_line(line_no: int) -> None:
            if line_no % EVERY == 0:
                done(line_no)

        job_file = read_job_file(
            args.file,
            priority=args.priority,
            max_attempts=args.max_attempts,
            timeout=args.timeout,
            tags=tags_given(args),
            on_line=on_line,
        )
        done(total or 0)
    return job_file


def _default_handler(path: Path, job_file: JobFile, endpoint: Endpoint | None) -> str:
    """The provider of batch-style files (`openai` for OpenAI lines, `anthropic` for
    Anthropic's), else the named endpoint's; other files must name their handler (never
    `sim` by default)."""
    if len(job_file.styles) == 1 and next(iter(job_file.styles)) in STYLE_PROVIDERS:
        return STYLE_PROVIDERS[next(iter(job_file.styles))]
    if endpoint is not None:
        return endpoint.provider
    raise CliError(
        f"{path}: {{key, payload}} lines, CSV rows and mixed files need --handler "
        "(openai, anthropic, sim for simulated results, noop, or module:function)"
    )


def _check_endpoint(handler: str, endpoint: Endpoint | None) -> None:
    """A provider's handler with another provider's endpoint could only fail every job."""
    if endpoint and handler in PROVIDER_NAMES and handler != endpoint.provider:
        raise CliError(
            f"--endpoint {endpoint.name} is an {endpoint.provider} endpoint; "
            f"handler {handler} needs an {handler} one"
        )


def interrupted_message(inserted: int | None, queue_name: str) -> str:
    """What Ctrl-C left behind: None when the enqueue never committed."""
    if inserted is None:
        return "interrupted: nothing enqueued"
    return f"interrupted: {inserted} jobs were enqueued into {queue_name!r} before the interrupt"


@dataclass(frozen=True, slots=True)
class _Enqueued:
    inserted: int
    skipped: int
    interrupted: bool


def _enqueue_interruptibly(args: argparse.Namespace, job_file: JobFile, handler: str) -> _Enqueued:
    """Run the enqueue transaction on a thread so that Ctrl-C can stop it and still say
    what happened: before COMMIT the statement is interrupted and rolled back (a
    KeyboardInterrupt propagates); once COMMIT has begun it is never interrupted, the jobs
    are there, and the result says `interrupted`.
    """
    write = queue.enqueue_write(
        args.queue, job_file.jobs, handler=handler, endpoint_name=args.endpoint
    )
    interrupted, committing = threading.Event(), threading.Event()
    lock = threading.Lock()

    def guarded(tx: Tx) -> tuple[int, int]:
        if interrupted.is_set():  # Ctrl-C while waiting for the write lock
            raise KeyboardInterrupt
        counts = write(tx)
        with lock:
            if interrupted.is_set():
                raise KeyboardInterrupt  # rolled back by the transaction
            committing.set()
        return counts

    db = open_sync(args)

    def on_sigint(signum: int, frame: Any) -> None:
        with lock:
            interrupted.set()
            if not committing.is_set():
                db.interrupt()  # aborts the running statement; SQLite rolls back

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with (
            progress_bar(f"writing {len(job_file.jobs):,} jobs", None),
            ThreadPoolExecutor(1) as pool,
        ):
            inserted, skipped = pool.submit(db.write, guarded).result()
    except DatabaseError:
        if interrupted.is_set() and not committing.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        # Closing checkpoints the WAL; a Ctrl-C meanwhile is still "after the commit".
        db.close()
        signal.signal(signal.SIGINT, previous)
    return _Enqueued(inserted, skipped, interrupted.is_set())


def cmd_action(args: argparse.Namespace) -> int:
    """retry / cancel / resume over ids, statuses and queues."""
    flt = job_filter(args)
    if args.action != "resume" and flt.is_empty:
        raise CliError(
            f"{args.action}: name job ids, --filter, --status or --queue (refusing all jobs)"
        )
    if args.action == "retry":
        n = run_async(lambda db: queue.retry(db, flt, _actor()), args)
        print(f"retried {n} jobs")
        # Lines of remote batches run again only in a child batch: say which command does.
        remote = run_async(lambda db: queue.remote_retries(db, flt), args)
        for batch in remote:
            print(f"batchdash: {batch.advice()}", file=sys.stderr)
        if remote:
            return EXIT_ATTENTION
    elif args.action == "cancel":
        now, flagged = run_async(lambda db: queue.cancel(db, flt, _actor()), args)
        print(
            f"cancelled {now} pending jobs; {flagged} running jobs will stop at their "
            "next heartbeat"
        )
    else:
        rescued, queues = run_async(lambda db: queue.resume(db, flt, _actor()), args)
        print(f"rescued {rescued} jobs; resumed queues: {', '.join(queues) or 'none'}")
        return _budget_held(args)
    return EXIT_OK


def _budget_held(args: argparse.Namespace) -> int:
    """Name the queues `resume` left paused because they spent their budget (exit 1)."""
    infos = run_async(lambda db: db.read(lambda tx: tx.queues.list_queues()), args)
    held = [q for q in infos if budget.budget_paused(q)]
    for q in held:
        print(
            f"batchdash: queue {q.name!r} stays paused: {budget.budget_note(q)}; "
            f"raise it with `batchdash queue budget {q.name} --usd N`",
            file=sys.stderr,
        )
    return EXIT_ATTENTION if held else EXIT_OK


def _actor() -> Actor:
    """Who acts from the command line (written into each action's events)."""
    return Actor.current(Origin.CLI)


def cmd_queue_pause(args: argparse.Namespace) -> int:
    """Pause or resume one queue."""
    run_async(lambda db: queue.set_paused(db, args.name, args.paused, _actor()), args)
    print(f"queue {args.name!r} {'paused' if args.paused else 'resumed'}")
    return EXIT_OK


# --------------------------------------------------------------------------- command line


@click.command(epilog=example("batchdash init --db work.db"))
@db_option()
def init(**_: Any) -> Any:
    """Create (or migrate) the database."""
    return invoke(cmd_init, creates=True)


@click.command(
    epilog=example(
        "batchdash enqueue requests.jsonl --queue summaries",
        "batchdash enqueue rows.csv --handler mypkg.jobs:summarize --priority 5",
        "batchdash enqueue papers.jsonl --tag nightly --tag run-42",
        "batchdash enqueue requests.jsonl --estimate",
    )
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option()
@click.option("--queue", type=NON_EMPTY, default="default", show_default=True, help="Queue name.")
@click.option(
    "--handler",
    type=NON_EMPTY,
    default=None,
    help="openai, anthropic, sim (simulated results), noop or module:function; batch-style "
    "lines default to their provider, {key, payload} lines and CSV rows need it.",
)
@click.option(
    "--endpoint",
    metavar="NAME",
    default=None,
    help="A named endpoint of the config file ([endpoints.NAME]) the jobs' handler calls.",
)
@click.option("--priority", type=INT64, default=0, show_default=True, help="Higher runs first.")
@click.option(
    "--max-attempts",
    type=POSITIVE_INT,
    default=3,
    show_default=True,
    help="Attempts before failing.",
)
@click.option(
    "--timeout",
    type=POSITIVE_FLOAT,
    default=None,
    help="Cancel an attempt after this long (default: the worker's --job-timeout).",
)
@tag_option("every job (JSONL lines may add their own `tags` list)")
@click.option(
    "--estimate",
    is_flag=True,
    help="Print expected tokens and the cost range at the real-time price; enqueue nothing.",
)
def enqueue(**_: Any) -> Any:
    """Add jobs from a JSONL (batch-style or {key, payload}) or CSV file."""
    return invoke(cmd_enqueue, creates=True)


def _action(name: str, helptext: str, *examples: str) -> click.Command:
    """`retry`, `cancel` and `resume`: the same selection options, one action each."""

    @click.command(name, help=helptext, epilog=example(*examples))
    @click.argument("ids", type=POSITIVE_INT, nargs=-1, metavar="[ID]...")
    @db_option()
    @status_option()
    @queue_option()
    @filter_option
    def command(**_: Any) -> Any:
        return invoke(cmd_action, action=name)

    return command


retry = _action(
    "retry",
    "Send failed or cancelled jobs back to pending.",
    "batchdash retry --status failed --queue summaries",
    "batchdash retry 12 13 14",
    "batchdash retry --filter 'status:failed key:tr-*'",
)
cancel = _action(
    "cancel",
    "Cancel pending jobs now and running ones at their next heartbeat.",
    "batchdash cancel --queue summaries --status pending",
    "batchdash cancel --filter 'queue:summaries worker:host-1'",
)
resume = _action(
    "resume",
    "Rescue jobs of dead workers and un-pause queues.",
    "batchdash resume",
    "batchdash resume --queue summaries",
)


@click.group(
    "queue",
    cls=Group,
    lazy={"budget": "budget:budget"},
    epilog=example("batchdash queue pause summaries", "batchdash queue budget summaries --usd 25"),
)
def queue_group() -> None:
    """Pause or resume a queue, or set its cost budget."""


def _pause(name: str) -> click.Command:
    @queue_group.command(
        name,
        help=f"{name.capitalize()} a queue.",
        epilog=example(f"batchdash queue {name} summaries"),
    )
    @click.argument("name", type=NON_EMPTY)
    @db_option()
    def command(**_: Any) -> Any:
        return invoke(cmd_queue_pause, paused=name == "pause")

    return command


_pause("pause")
_pause("resume")
