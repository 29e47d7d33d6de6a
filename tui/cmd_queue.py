"""Queue commands: init, enqueue, jobs list/show, retry, cancel, resume, queue, export."""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchdash.core import queue
from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.errors import DatabaseError
from batchdash.core.files import open_private
from batchdash.core.handlers import resolve
from batchdash.core.inputs import BATCH_STYLE, InputError, JobFile, read_job_file
from batchdash.core.models import Job, JobFilter, JobStatus
from batchdash.tui.argtypes import int64, non_empty, positive_float, positive_int
from batchdash.tui.cli import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    add_db_option,
    db_path,
    open_sync,
    run_async,
)
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


def register(commands: Any) -> None:
    """Add the queue commands to the top-level parser."""
    p = commands.add_parser("init", help="create (or migrate) the database")
    add_db_option(p, creates=True)
    p.set_defaults(func=cmd_init)

    p = commands.add_parser("enqueue", help="add jobs from a JSONL or CSV file")
    add_db_option(p, creates=True)
    p.add_argument("file", type=Path, help="JSONL (batch-style or {key, payload}) or CSV")
    p.add_argument(
        "--queue", type=non_empty, default="default", help="queue name (default: default)"
    )
    p.add_argument(
        "--handler",
        type=non_empty,
        default=None,
        help="openai, sim (simulated results), noop or module:function; batch-style lines "
        "default to openai, {key, payload} lines and CSV rows need it",
    )
    p.add_argument("--priority", type=int64, default=0, help="higher runs first (default 0)")
    p.add_argument(
        "--max-attempts", type=positive_int, default=3, help="attempts before failing (3)"
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="cancel an attempt after this long (default: the worker's --job-timeout)",
    )
    p.set_defaults(func=cmd_enqueue)

    jobs = commands.add_parser("jobs", help="list or show jobs").add_subparsers(
        dest="jobs_command", metavar="SUBCOMMAND", required=True
    )
    p = jobs.add_parser("list", help="list jobs (all matching rows unless --limit)")
    add_db_option(p)
    p.add_argument("--status", action="append", choices=list(JobStatus), default=[])
    p.add_argument("--queue", action="append", type=non_empty, default=[])
    p.add_argument("--limit", type=positive_int, default=None, help="at most N rows")
    p.add_argument(
        "--order",
        choices=list(LIST_ORDERS),
        default="newest",
        help="newest (default, as the dashboard), oldest, updated (recently updated first), "
        "key (queue, key), attempts (most first), status",
    )
    p.add_argument("--json", action="store_true", help="a JSON array of objects")
    p.set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("show", help="one job in full, with its timeline")
    add_db_option(p)
    p.add_argument("id", type=positive_int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs_show)

    for name, helptext in (
        ("retry", "send failed/cancelled jobs back to pending"),
        ("cancel", "cancel pending jobs now and running ones at their next heartbeat"),
        ("resume", "rescue jobs of dead workers and un-pause queues"),
    ):
        p = commands.add_parser(name, help=helptext)
        add_db_option(p)
        p.add_argument("ids", type=positive_int, nargs="*", metavar="ID")
        p.add_argument("--status", action="append", choices=list(JobStatus), default=[])
        p.add_argument("--queue", action="append", type=non_empty, default=[])
        p.set_defaults(func=cmd_action, action=name)

    qp = commands.add_parser("queue", help="pause or resume a queue").add_subparsers(
        dest="queue_command", metavar="SUBCOMMAND", required=True
    )
    for name in ("pause", "resume"):
        p = qp.add_parser(name, help=f"{name} a queue")
        add_db_option(p)
        p.add_argument("name", type=non_empty)
        p.set_defaults(func=cmd_queue_pause, paused=name == "pause")

    p = commands.add_parser("export", help="write jobs (or events) as CSV or JSONL")
    add_db_option(p)
    p.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    p.add_argument("--events", action="store_true", help="export the event timeline")
    p.add_argument("--qa", action="store_true", help="export QA verdicts (job × judge)")
    p.add_argument("--status", action="append", choices=list(JobStatus), default=[])
    p.add_argument("--queue", action="append", type=non_empty, default=[])
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p.set_defaults(func=cmd_export)


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
        job_file = read_job_file(
            args.file, priority=args.priority, max_attempts=args.max_attempts, timeout=args.timeout
        )
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
        with ThreadPoolExecutor(1) as pool:
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
    return JobFilter(
        statuses=tuple(args.status),
        queues=tuple(args.queue),
        ids=tuple(getattr(args, "ids", ()) or ()),
    )


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
            _write_json_array(sys.stdout, (job.to_dict() for job in rows))
        else:
            _print_jobs(rows, db.read(lambda tx: tx.jobs.count_jobs(flt)))
    return EXIT_OK


def _write_json_array(out: IO[str], items: Iterator[dict[str, Any]]) -> None:
    """Stream a JSON array without holding every row in memory."""
    out.write("[")
    for index, item in enumerate(items):
        out.write(",\n" if index else "\n")
        out.write(json.dumps(item, ensure_ascii=False))
    out.write("\n]\n")


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
    from batchdash.tui.cmd_qa import result_lines, result_to_dict

    with open_sync(args) as db:
        job = db.read(lambda tx: tx.jobs.get_job(args.id))
        events = db.read(lambda tx: tx.events.list_events(job.id))
        verdicts = db.read(lambda tx: tx.qa.qa_results_for_job(job.id))
    if args.json:
        data = job.to_dict()
        data["qa"] = [result_to_dict(r) for r in verdicts]
        data["events"] = [
            {"at": e.at, "kind": e.kind, "worker_id": e.worker_id, "detail": e.detail}
            for e in events
        ]
        print(json.dumps(data, indent=2, ensure_ascii=False))
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
        raise CliError(f"{args.action}: name job ids, --status or --queue (refusing all jobs)")
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
