"""`batchdash jobs list` and `batchdash jobs show`: jobs as a table, JSON, or one in full."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from typing import Any

import click

from batchdash.core.db.ports import Tx
from batchdash.core.models import Job, JobStatus
from batchdash.tui.argtypes import POSITIVE_INT
from batchdash.tui.cli.common import EXIT_OK, Group, db_option, example, invoke, open_sync
from batchdash.tui.cli.selection import (
    filter_option,
    job_filter,
    queue_option,
    status_option,
    time_options,
)
from batchdash.tui.cli.views import result_lines, result_to_dict, write_json, write_json_list
from batchdash.tui.fmt import age, duration, one_line, table
from batchdash.tui.stage_text import progress_text, run_json, timeline_lines

#: `jobs list --order` names and the store's sort orders behind them.
LIST_ORDERS = {
    "newest": "-id",
    "oldest": "id",
    "updated": "-updated",
    "key": "key",
    "attempts": "attempts",
    "status": "status",
}


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """Every matching job (or `--limit` of them), newest first unless `--order` says else."""
    flt = job_filter(args)

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
        elif args.limit is None:
            _print_jobs(rows, None)  # every match is listed: the count is the rows shown
        else:
            _print_jobs(rows, db.read(lambda tx: tx.jobs.count_jobs_upto(flt, LIST_COUNT_CAP)))
    return EXIT_OK


#: How far `jobs list --limit N` counts the matches it leaves out: exact counts come free
#: for statuses and queues, but a text filter's are counted row by row (seconds at 10M).
LIST_COUNT_CAP = 100_000


def _print_jobs(rows: Iterator[Job], counted: tuple[int, bool] | None) -> None:
    """The rows as a table, then "N of M jobs" (`counted`: M and whether it is exact, or
    None for all of them)."""
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
    total, exact = counted or (shown, True)
    print(f"{shown} of {total}{'' if exact else '+'} jobs")


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
        runs = db.read(lambda tx: tx.stages.job_stages(job.id))
        tags = db.read(lambda tx: tx.tags.job_tags([job.id])).get(job.id, [])
    if args.json:
        data = {
            "job": job.to_dict(),
            "tags": tags,
            "qa": [result_to_dict(r) for r in verdicts],
            "stages": [run_json(r) for r in runs],
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
        ("tags", " ".join(tags) or "-"),
        ("duration", duration(job.duration)),
        ("tokens", f"{job.input_tokens or 0} in / {job.output_tokens or 0} out"),
        ("progress", progress_text(job) or "-"),
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
    if runs:
        print("stages:")
        for line in timeline_lines(runs, job, now):
            print(f"  {line}")
    print("timeline:")
    for event in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.at))
        who = f" [{event.worker_id}]" if event.worker_id else ""
        print(f"  {when}  {event.kind}{who}  {event.detail or ''}".rstrip())
    return EXIT_OK


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
        "batchdash jobs list --filter tag:nightly --since 2h --json > jobs.json",
    ),
)
@db_option()
@status_option()
@queue_option()
@filter_option
@time_options("jobs")
@click.option("--limit", type=POSITIVE_INT, default=None, help="At most N rows.")
@click.option(
    "--order",
    type=click.Choice(list(LIST_ORDERS)),
    default="newest",
    show_default=True,
    help="newest (as the dashboard), oldest, updated (recently updated first), "
    "key (queue, key), attempts (most first), status.",
)
@click.option("--json", is_flag=True, help="As a JSON document.")
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
