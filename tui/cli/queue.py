"""Queue commands: init, enqueue, jobs list/show, retry, cancel, resume, queue, export."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import click

from batchdash.core import queue
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.errors import DatabaseError
from batchdash.core.files import open_private
from batchdash.core.filters import FilterError, parse_filter
from batchdash.core.handlers import resolve
from batchdash.core.inputs import BATCH_STYLE, InputError, JobFile, read_job_file
from batchdash.core.models import Job, JobFilter, JobStatus
from batchdash.tui.argtypes import INT64, NON_EMPTY, POSITIVE_FLOAT, POSITIVE_INT
from batchdash.tui.cli.common import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    F,
    Group,
    db_option,
    db_path,
    example,
    invoke,
    open_sync,
    run_async,
)
from batchdash.tui.cli.progress import EVERY, count_lines, on_terminal, progress_bar, tracked
from batchdash.tui.cli.views import result_lines, result_to_dict, write_json, write_json_list
from batchdash.tui.fmt import age, duration, one_line, table

#: `jobs list --order` names and the store's sort orders behind them.
LIST_ORDERS = {
    "newest": "-id",
    "oldest": "id",
    "updated": "-updated",
    "key": "key",
    "attempts": "attempts",
    "status": "status",
}


# --------------------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace) -> int:
    """Create or migrate the database and say where it is."""
    with open_sync(args):
        pass
    print(f"database ready: {db_path(args)}")
    return EXIT_OK


def cmd_enqueue(args: argparse.Namespace) -> int:
    """Read the whole file first; enqueue it in one transaction or not at all."""
    if args.handler is not None:
        resolve(args.handler)  # unknown handler: one-line error before touching the DB
    try:
        job_file = _read_with_progress(args)
        handler = args.handler or _default_handler(args.file, job_file)
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
            on_line=on_line,
        )
        done(total or 0)
    return job_file


def _default_handler(path: Path, job_file: JobFile) -> str:
    """`openai` for batch-style files; anything else must name its handler (never `sim`)."""
    if job_file.styles == {BATCH_STYLE}:
        return "openai"
    raise CliError(
        f"{path}: {{key, payload}} lines and CSV rows need --handler "
        "(openai, sim for simulated results, noop, or module:function)"
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
    write = queue.enqueue_write(args.queue, job_file.jobs, handler=handler)
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


def _filter(args: argparse.Namespace) -> JobFilter:
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


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """Every matching job (or `--limit` of them), newest first unless `--order` says else."""
    flt = _filter(args)

    def require_queues(tx: Tx) -> None:
        for name in flt.queues:
            tx.queues.require_queue(name)

    with open_sync(args) as db:
        db.read(require_queues)
        rows: Iterator[Job] = iter(
            db.read(lambda tx: tx.jobs.list_jobs(flt, args.limit, order=LIST_ORDERS[args.order]))
            if args.limit is not None
            else db.read(lambda tx: tx.jobs.iter_jobs(flt, order=LIST_ORDERS[args.order]))
        )
        if args.json:
            write_json_list("jobs", (job.to_dict() for job in rows))
        else:
            _print_jobs(rows, db.read(lambda tx: tx.jobs.count_jobs(flt)))
    return EXIT_OK


def _print_jobs(rows: Iterator[Job], total: int) -> None:
    now = time.time()
    header = ("ID", "KEY", "QUEUE", "HANDLER", "STATUS", "ATT", "WORKER", "AGE", "DUR", "ERROR")
    shown = 0

    def cells() -> Iterator[tuple[str, ...]]:
        nonlocal shown
        for job in rows:
            shown += 1
            yield (
                str(job.id),
                job.key,
                job.queue,
                job.handler,
                _status_text(job, now),
                f"{job.attempts}/{job.max_attempts}",
                job.worker_id or "-",
                age(now - job.created_at),
                duration(job.duration),
                one_line(job.error or "", 60),
            )

    for line in table(header, cells()):
        print(line)
    print(f"{shown} of {total} jobs")


def _status_text(job: Job, now: float) -> str:
    if job.status == JobStatus.PENDING and job.run_after > now:
        return f"retrying in {duration(job.run_after - now)}"
    if job.status == JobStatus.RUNNING and job.cancel_requested:
        return "cancelling"
    return job.status


def cmd_jobs_show(args: argparse.Namespace) -> int:
    """One job with payload, result or error, QA verdicts, and its timeline."""
    with open_sync(args) as db:
        job = db.read(lambda tx: tx.jobs.get_job(args.id))
        events = db.read(lambda tx: tx.events.list_events(job.id))
        verdicts = db.read(lambda tx: tx.qa.qa_results_for_job(job.id))
    if args.json:
        data = {
            "job": job.to_dict(),
            "qa": [result_to_dict(r) for r in verdicts],
            "events": [
                {"at": e.at, "kind": e.kind, "worker_id": e.worker_id, "detail": e.detail}
                for e in events
            ],
        }
        write_json(data)
        return EXIT_OK
    now = time.time()
    for label, value in (
        ("job", f"{job.id}  {job.key}  (queue {job.queue}, handler {job.handler})"),
        ("status", _status_text(job, now)),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("worker", job.worker_id or "-"),
        ("duration", duration(job.duration)),
        ("tokens", f"{job.input_tokens or 0} in / {job.output_tokens or 0} out"),
        ("error", job.error or "-"),
        ("payload", json.dumps(job.payload, ensure_ascii=False)),
        ("result", json.dumps(job.result, ensure_ascii=False)),
    ):
        print(f"{label:>9}: {value}")
    if verdicts:
        print("       qa:")
        for verdict in verdicts:
            for line in result_lines(verdict):
                print(f"  {line}")
    print("timeline:")
    for event in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.at))
        who = f" [{event.worker_id}]" if event.worker_id else ""
        print(f"  {when}  {event.kind}{who}  {event.detail or ''}".rstrip())
    return EXIT_OK


def cmd_action(args: argparse.Namespace) -> int:
    """retry / cancel / resume over ids, statuses and queues."""
    flt = _filter(args)
    if args.action != "resume" and flt.is_empty:
        raise CliError(
            f"{args.action}: name job ids, --filter, --status or --queue (refusing all jobs)"
        )
    if args.action == "retry":
        n = run_async(lambda db: queue.retry(db, flt), args)
        print(f"retried {n} jobs")
        # Lines of remote batches run again only in a child batch: say which command does.
        remote = run_async(lambda db: queue.remote_retries(db, flt), args)
        for batch in remote:
            print(f"batchdash: {batch.advice()}", file=sys.stderr)
        if remote:
            return EXIT_ATTENTION
    elif args.action == "cancel":
        now, flagged = run_async(lambda db: queue.cancel(db, flt), args)
        print(
            f"cancelled {now} pending jobs; {flagged} running jobs will stop at their "
            "next heartbeat"
        )
    else:
        rescued, queues = run_async(lambda db: queue.resume(db, flt), args)
        print(f"rescued {rescued} jobs; resumed queues: {', '.join(queues) or 'none'}")
    return EXIT_OK


def cmd_queue_pause(args: argparse.Namespace) -> int:
    """Pause or resume one queue."""
    run_async(lambda db: queue.set_paused(db, args.name, args.paused), args)
    print(f"queue {args.name!r} {'paused' if args.paused else 'resumed'}")
    return EXIT_OK


# --------------------------------------------------------------------------- export

JOB_COLUMNS = (
    "id",
    "key",
    "queue",
    "status",
    "attempts",
    "max_attempts",
    "handler",
    "worker_id",
    "batch_id",
    "created_at",
    "started_at",
    "finished_at",
    "duration",
    "error",
    "error_kind",
    "input_tokens",
    "output_tokens",
    "cost",
    "payload",
    "result",
)
EVENT_COLUMNS = ("id", "at", "kind", "job_id", "batch_id", "queue", "worker_id", "detail")
#: QA export columns around the per-dimension scores (one column per dimension).
QA_HEAD = ("job_id", "key", "queue", "judge", "overall")
QA_TAIL = (
    "comment",
    "error",
    "raw",
    "input_tokens",
    "output_tokens",
    "cost",
    "batch_id",
    "created_at",
)


def cmd_export(args: argparse.Namespace) -> int:
    """Stream jobs or events to a file (written to a temp name, then renamed) or stdout."""
    with open_sync(args) as db:
        rows, columns = _export_rows(db, args)
        # Only jobs have a known count; events and verdicts show count and rate alone.
        flt = _filter(args)
        total = None if args.events or args.qa else db.read(lambda tx: tx.jobs.count_jobs(flt))
        rows = tracked(rows, "exporting", total)
        if args.output is None:
            _write_rows(sys.stdout, rows, columns, args.format)
        else:
            tmp = args.output.with_name(args.output.name + ".partial")
            # Owner-only like the database: exports may hold results.
            with open(open_private(tmp), "w", encoding="utf-8", newline="") as out:
                _write_rows(out, rows, columns, args.format)
            tmp.replace(args.output)
            print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK


def _export_rows(
    db: SyncStore, args: argparse.Namespace
) -> tuple[Iterator[dict[str, Any]], tuple[str, ...]]:
    if args.events:
        events = db.read(lambda tx: tx.events.list_events(None))
        return (
            ({c: getattr(e, c) for c in EVENT_COLUMNS} for e in events),
            EVENT_COLUMNS,
        )
    if args.qa:
        return _qa_rows(db, args)
    jobs = db.read(lambda tx: tx.jobs.iter_jobs(_filter(args)))
    return ({c: job.to_dict()[c] for c in JOB_COLUMNS} for job in jobs), JOB_COLUMNS


def _qa_rows(
    db: SyncStore, args: argparse.Namespace
) -> tuple[Iterator[dict[str, Any]], tuple[str, ...]]:
    """QA verdicts of the matching jobs, one row per (job, judge), a column per dimension."""
    if args.events:
        raise CliError("export: choose --events or --qa, not both")
    dimensions = tuple(d for d in db.read(lambda tx: tx.qa.qa_dimensions()) if d != "overall")
    columns = (*QA_HEAD, *dimensions, *QA_TAIL)
    rows = (
        {c: row["scores"].get(c) if c in dimensions else row[c] for c in columns}
        for row in db.read(lambda tx: tx.qa.iter_qa_rows(_filter(args)))
    )
    return rows, columns


def _write_rows(
    out: IO[str], rows: Iterator[dict[str, Any]], columns: tuple[str, ...], fmt: str
) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                for k, v in row.items()
            }
        )


# --------------------------------------------------------------------------- command line

STATUS_NAMES = [s.value for s in JobStatus]


def _status_option(help_text: str = "Only jobs with this status (repeatable).") -> Callable[[F], F]:
    return click.option("--status", multiple=True, type=click.Choice(STATUS_NAMES), help=help_text)


def _filter_option(fn: F) -> F:
    """`--filter`: the dashboard's filter language, ANDed with the other options."""
    return click.option(
        "--filter",
        metavar="TEXT",
        default=None,
        help="The dashboard's filter language, e.g. 'status:failed key:tr-* score<6'.",
    )(fn)


def _queue_option() -> Callable[[F], F]:
    return click.option(
        "--queue", multiple=True, type=NON_EMPTY, help="Only jobs of this queue (repeatable)."
    )


@click.command(epilog=example("batchdash init --db work.db"))
@db_option()
def init(**_: Any) -> Any:
    """Create (or migrate) the database."""
    return invoke(cmd_init, creates=True)


@click.command(
    epilog=example(
        "batchdash enqueue requests.jsonl --queue summaries",
        "batchdash enqueue rows.csv --handler mypkg.jobs:summarize --priority 5",
    )
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option()
@click.option("--queue", type=NON_EMPTY, default="default", show_default=True, help="Queue name.")
@click.option(
    "--handler",
    type=NON_EMPTY,
    default=None,
    help="openai, sim (simulated results), noop or module:function; batch-style lines "
    "default to openai, {key, payload} lines and CSV rows need it.",
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
def enqueue(**_: Any) -> Any:
    """Add jobs from a JSONL (batch-style or {key, payload}) or CSV file."""
    return invoke(cmd_enqueue, creates=True)


@click.group(
    cls=Group, epilog=example("batchdash jobs list --status failed", "batchdash jobs show 42")
)
def jobs() -> None:
    """List or show jobs."""


@jobs.command(
    "list",
    epilog=example(
        "batchdash jobs list --status failed --queue summaries --limit 20",
        "batchdash jobs list --filter 'status:failed key:tr-* score<6'",
        "batchdash jobs list --json > jobs.json",
    ),
)
@db_option()
@_status_option()
@_queue_option()
@_filter_option
@click.option("--limit", type=POSITIVE_INT, default=None, help="At most N rows.")
@click.option(
    "--order",
    type=click.Choice(list(LIST_ORDERS)),
    default="newest",
    show_default=True,
    help="newest (as the dashboard), oldest, updated (recently updated first), "
    "key (queue, key), attempts (most first), status.",
)
@click.option("--json", is_flag=True, help="A JSON array of objects.")
def jobs_list(**_: Any) -> Any:
    """List jobs (all matching rows unless --limit)."""
    return invoke(cmd_jobs_list)


@jobs.command("show", epilog=example("batchdash jobs show 42 --json"))
@click.argument("id", type=POSITIVE_INT)
@db_option()
@click.option("--json", is_flag=True, help="As a JSON object.")
def jobs_show(**_: Any) -> Any:
    """One job in full, with its QA verdicts and timeline."""
    return invoke(cmd_jobs_show)


def _action(name: str, helptext: str, *examples: str) -> click.Command:
    """`retry`, `cancel` and `resume`: the same selection options, one action each."""

    @click.command(name, help=helptext, epilog=example(*examples))
    @click.argument("ids", type=POSITIVE_INT, nargs=-1, metavar="[ID]...")
    @db_option()
    @_status_option()
    @_queue_option()
    @_filter_option
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


@click.group("queue", cls=Group, epilog=example("batchdash queue pause summaries"))
def queue_group() -> None:
    """Pause or resume a queue."""


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


@click.command(
    epilog=example(
        "batchdash export --status succeeded -o results.jsonl",
        "batchdash export --filter 'score<6' --qa --format csv -o low.csv",
        "batchdash export --format csv --qa -o verdicts.csv",
    )
)
@db_option()
@click.option(
    "--format",
    type=click.Choice(("csv", "jsonl")),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@click.option("--events", is_flag=True, help="Export the event timeline.")
@click.option("--qa", is_flag=True, help="Export QA verdicts (job × judge).")
@_status_option()
@_queue_option()
@_filter_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout).",
)
def export(**_: Any) -> Any:
    """Write jobs (or events, or QA verdicts) as CSV or JSONL."""
    return invoke(cmd_export)
