"""`batchdash export`: jobs, events or QA verdicts as CSV or JSONL, to a file or stdout."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.files import open_private
from batchdash.core.models import ALL_JOBS, Event, JobFilter
from batchdash.tui.cli.common import (
    EXIT_OK,
    CliError,
    db_option,
    example,
    invoke,
    open_sync,
    output_option,
)
from batchdash.tui.cli.progress import tracked
from batchdash.tui.cli.selection import (
    filter_option,
    job_filter,
    queue_option,
    status_option,
    time_options,
)

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
#: Events read per transaction while exporting the timeline.
EVENT_PAGE = 5000
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
        flt = job_filter(args)
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
        events = _events(db, job_filter(args))
        return (
            ({c: getattr(e, c) for c in EVENT_COLUMNS} for e in events),
            EVENT_COLUMNS,
        )
    if args.qa:
        return _qa_rows(db, args)
    jobs = db.read(lambda tx: tx.jobs.iter_jobs(job_filter(args)))
    return ({c: job.to_dict()[c] for c in JOB_COLUMNS} for job in jobs), JOB_COLUMNS


def _events(db: SyncStore, flt: JobFilter) -> Iterator[Event]:
    """The timeline in pages (any size streams): every event, or with a filter (`--status`,
    `--queue`, `--filter`, ids) the events of the matching jobs only."""

    def page_after(after: int) -> Callable[[Tx], list[Event]]:
        if flt == ALL_JOBS:
            return lambda tx: tx.events.list_events(None, after, EVENT_PAGE)
        return lambda tx: tx.events.job_events(flt, after, EVENT_PAGE)

    after = 0
    while True:
        page = db.read(page_after(after))
        yield from page
        if len(page) < EVENT_PAGE:
            return
        after = page[-1].id


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
        for row in db.read(lambda tx: tx.qa.iter_qa_rows(job_filter(args)))
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


@click.command(
    epilog=example(
        "batchdash export --status succeeded -o results.jsonl",
        "batchdash export --filter 'score<6' --qa --format csv -o low.csv",
        "batchdash export --format csv --qa -o verdicts.csv",
        "batchdash export --filter tag:nightly --since 2026-11-01 --until 2026-12-01",
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
@status_option()
@queue_option()
@filter_option
@time_options("jobs")
@output_option()
def export(**_: Any) -> Any:
    """Write jobs (or events, or QA verdicts) as CSV or JSONL.

    --since/--until compare the time each job was created; with --events or --qa they
    select the events or verdicts of those jobs.
    """
    return invoke(cmd_export)
