"""Remote-batch commands: submit, batches list/show/cancel/resubmit/download/import/
reconcile, and `submit --wait` (which follows them with `tui/cli/polling.py`'s loop).

They call the provider-neutral `core.remote`; `openai` is imported only by the commands
that talk to the provider.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from batchdash.core import batches, cost_estimate, remote
from batchdash.core.actor import Actor, Origin
from batchdash.core.config import PROVIDER_NAMES
from batchdash.core.db.ports import SyncStore
from batchdash.core.endpoints import choose_provider
from batchdash.core.inputs import InputError
from batchdash.core.models import Batch, BatchState
from batchdash.core.providers import DEFAULT_PROVIDER, MODULES
from batchdash.tui.argtypes import Checked, non_negative_float
from batchdash.tui.cli.batch_text import batch_note, describe_batch
from batchdash.tui.cli.common import (
    EXIT_ATTENTION,
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    Group,
    db_option,
    example,
    invoke,
    open_sync,
    output_option,
    run_async,
)
from batchdash.tui.cli.polling import poll_loop
from batchdash.tui.cli.progress import byte_bar, tracked
from batchdash.tui.cli.selection import tag_option, tags_given, time_options, time_window
from batchdash.tui.cli.views import batch_json, write_json
from batchdash.tui.fmt import age, count, money, table
from batchdash.tui.once import batch_lines_text

#: Fields of `batches download` rows, in column order.
DOWNLOAD_FIELDS = (
    "custom_id",
    "line_no",
    "outcome",
    "status_code",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cost",
    "job_id",
    "status",
    "result",
)


# --------------------------------------------------------------------------- helpers


def _batch(db: SyncStore, ref: str) -> Batch:
    return db.read(lambda tx: tx.batches.get_batch(ref))


def _local_id(args: argparse.Namespace) -> int:
    """Resolve a local or provider id to the local id (NotFoundError: exit 2)."""
    with open_sync(args) as db:
        return _batch(db, args.batch).id


def _url_and_name(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(request URL, endpoint name): `--endpoint` names a config endpoint, but a value
    starting with / is the request URL it meant before named endpoints (now `--url`)."""
    if args.endpoint and args.endpoint.startswith("/"):
        return args.url or args.endpoint, None
    return args.url, args.endpoint


def _metadata(pairs: list[str]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata {pair!r}: expected KEY=VALUE")
        meta[key] = value
    return meta


# --------------------------------------------------------------------------- commands


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate everything locally first; nothing is uploaded when any line is wrong."""
    queue = args.queue or args.file.stem
    metadata = _metadata(args.metadata)
    tags = tags_given(args)
    url, name = _url_and_name(args)
    try:
        provider = choose_provider(args.file, args.provider, name)
        if args.estimate or args.max_usd is not None:
            remote.validate(args.file, endpoint=url, provider=provider)
            refused = _cost_check(args)
            if refused is not None or args.estimate:
                return refused or EXIT_OK
        if args.model_check:
            plan = remote.validate(args.file, endpoint=url, provider=provider)
            run_async(lambda db: remote.check_model(plan.model, provider=provider), args)
        with byte_bar(f"uploading {args.file.name}") as sent:
            ids = run_async(
                lambda db: remote.submit_file(
                    db,
                    args.file,
                    queue=queue,
                    endpoint=url,
                    endpoint_name=name,
                    provider=provider,
                    metadata=metadata,
                    on_upload=sent,
                    tags=tags,
                ),
                args,
            )
    except InputError as exc:
        for line in exc.lines():
            print(f"batchdash: error: {line}", file=sys.stderr)
        print(f"batchdash: nothing submitted from {args.file}", file=sys.stderr)
        return EXIT_ERROR
    with open_sync(args) as db:
        for batch_id in ids:
            batch = _batch(db, str(batch_id))
            print(
                f"batch {batch.id} ({batch.remote_id}): {count(batch.total)} lines of "
                f"{args.file} → queue {queue!r}, {batch.raw_status}"
            )
    return _wait(args, ids) if args.wait else EXIT_OK


def _cost_check(args: argparse.Namespace) -> int | None:
    """`--estimate` prints the cost range at the batch price; `--max-usd` refuses a file
    whose upper estimate exceeds it (an exit code: nothing is created or uploaded)."""
    estimate = cost_estimate.estimate_file(args.file, batch=True)
    if args.estimate:
        print("\n".join(cost_estimate.estimate_lines(estimate)))
    problem = None if args.max_usd is None else cost_estimate.over_limit(estimate, args.max_usd)
    if problem is None:
        return None
    print(f"batchdash: error: --max-usd: {problem}; nothing submitted", file=sys.stderr)
    return EXIT_ERROR


def cmd_list(args: argparse.Namespace) -> int:
    """Batches as a table or a JSON array."""
    since, until = time_window(args)
    with open_sync(args) as db:
        rows = db.read(
            lambda tx: tx.batches.list_batches(
                active_only=args.active,
                limit=args.limit,
                states=args.state,
                created_after=since,
                created_before=until,
            )
        )
    if args.json:
        now = time.time()
        write_json({"batches": [batch_json(b, now) for b in rows]})
        return EXIT_OK
    if not rows:
        print("no batches")
        return EXIT_OK
    now = time.time()
    header = ("ID", "REMOTE", "QUEUE", "STATE", "RAW", "LINES", "COST", "AGE", "NOTE")
    for line in table(
        header,
        (
            (
                str(b.id),
                b.remote_id or "-",
                b.queue,
                b.state,
                b.raw_status or "-",
                batch_lines_text(b),
                money(b.cost),
                # An imported batch's age is the provider's, not when it was imported.
                age(now - (b.remote_created_at or b.created_at)),
                batch_note(b, now),
            )
            for b in rows
        ),
    ):
        print(line)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """One batch in full."""
    with open_sync(args) as db:
        batch = _batch(db, args.batch)
        outcomes = db.read(lambda tx: tx.items.batch_outcome_counts(batch.id))
        children = db.read(lambda tx: tx.batches.batch_children(batch.id))
        tags = db.read(lambda tx: tx.tags.batch_tags([batch.id])).get(batch.id, [])
    if args.json:
        data = {"batch": batch_json(batch, time.time()), "tags": tags, "outcomes": outcomes}
        write_json({**data, "children": children})
        return EXIT_OK
    for line in describe_batch(batch, outcomes, children, time.time(), tags):
        print(line)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Request the cancel; the batch is `cancelling` until the provider confirms."""
    batch_id = _local_id(args)
    run_async(lambda db: remote.cancel_batch(db, batch_id, Actor.current(Origin.CLI)), args)
    with open_sync(args) as db:
        batch = _batch(db, str(batch_id))
    print(f"batch {batch.id}: cancel requested, now {batch.raw_status}")
    return EXIT_OK


def cmd_resubmit(args: argparse.Namespace) -> int:
    """Send the failures again as a linked child batch."""
    parent = _local_id(args)
    with open_sync(args) as db:
        plan = db.read(lambda tx: batches.resubmit_plan(tx, parent))
    child = run_async(
        lambda db: remote.resubmit_batch(
            db, parent, include_permanent=args.include_permanent, actor=Actor.current(Origin.CLI)
        ),
        args,
    )
    with open_sync(args) as db:
        batch = _batch(db, str(child))
    lines = f"{count(batch.total)} line{'s' if batch.total != 1 else ''}"
    print(f"batch {parent}: {lines} resubmitted as batch {child} ({batch.remote_id})")
    left_out = plan.left_out(args.include_permanent)
    if left_out:
        print(f"batch {parent}: {left_out}")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    """Each line's outcome and latest result, as JSONL or CSV."""
    with open_sync(args) as db:
        batch = _batch(db, args.batch)
        if args.delete and batch.ingested_at is None:
            raise CliError(f"batch {batch.id} is {batch.state}: --delete once its results are in")
        total = db.read(lambda tx: tx.items.count_batch_items(batch.id))
        rows = tracked(
            db.read(lambda tx: tx.items.batch_result_rows(batch.id)),
            f"downloading batch {batch.id}",
            total,
        )
        if args.output is None:
            _write_results(sys.stdout, rows, args.format)
        else:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                written = _write_results(out, rows, args.format)
            print(f"wrote {count(written)} lines of batch {batch.id} to {args.output}")
    if args.delete:
        run_async(lambda db: remote.delete_batch(db, batch.id, Actor.current(Origin.CLI)), args)
        print(f"batch {batch.id}: deleted {batch.remote_id} at the provider", file=sys.stderr)
    return EXIT_OK


def _write_results(out: IO[str], rows: Iterator[dict[str, Any]], fmt: str) -> int:
    written = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(DOWNLOAD_FIELDS)
        for row in rows:
            result = row["result"]
            row["result"] = "" if result is None else json.dumps(result, ensure_ascii=False)
            writer.writerow(["" if row[f] is None else row[f] for f in DOWNLOAD_FIELDS])
            written += 1
        return written
    for row in rows:
        out.write(json.dumps({f: row[f] for f in DOWNLOAD_FIELDS}, ensure_ascii=False) + "\n")
        written += 1
    return written


def cmd_import(args: argparse.Namespace) -> int:
    """Adopt the account's batches that are not tracked here yet."""
    ids = run_async(
        lambda db: remote.import_batches(db, queue=args.queue, provider=args.provider), args
    )
    print(f"imported {len(ids)} batches" + (f": {', '.join(map(str, ids))}" if ids else ""))
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Finish interrupted submissions: adopt what the provider has, submit the rest."""
    with open_sync(args) as db:
        stuck = db.read(lambda tx: tx.batches.submitting_batches())
    if not stuck:
        print("nothing to reconcile")
        return EXIT_OK
    done = run_async(remote.reconcile, args)
    for outcome in done:
        print(f"batch {outcome.batch_id}: {outcome.what}")
    skipped = len(stuck) - len(done)
    if skipped:
        print(f"{skipped} batches are being submitted by a live process; left alone")
    return EXIT_ATTENTION if any(o.what.startswith("error:") for o in done) else EXIT_OK


def _wait(args: argparse.Namespace, ids: list[int]) -> int:
    """`submit --wait`: poll until these batches are in, then say how they ended."""
    code = run_async(lambda db: poll_loop(db, args.interval, until_done=True, ids=ids), args)
    if code == EXIT_ERROR:
        return code
    with open_sync(args) as db:
        final = [_batch(db, str(i)) for i in ids]
        counts = db.read(lambda tx: [tx.items.batch_outcome_counts(b.id) for b in final])
        for batch, outcomes in zip(final, counts, strict=True):
            summary = "  ".join(f"{k} {count(v)}" for k, v in sorted(outcomes.items()))
            print(f"batch {batch.id}: {batch.state}  {summary}")
    return EXIT_OK if all(b.state == BatchState.SUCCEEDED for b in final) else EXIT_ATTENTION


# --------------------------------------------------------------------------- command line

_BATCH_ARG = click.argument("batch", metavar="BATCH")
_PROVIDER_OPTION = click.option(
    "--provider",
    type=click.Choice(sorted(MODULES)),
    default=DEFAULT_PROVIDER,
    show_default=True,
    help="Batch API to use.",
)


@click.command(
    epilog=example(
        "batchdash submit requests.jsonl --wait",
        "batchdash submit requests.jsonl --queue nightly --metadata team=search",
        "batchdash submit claude.jsonl --endpoint claude-eu   # [endpoints.claude-eu]",
        "batchdash submit requests.jsonl --tag nightly   # the batch and its jobs",
        "batchdash submit requests.jsonl --estimate",
        "batchdash submit requests.jsonl --max-usd 20",
    )
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option()
@click.option(
    "--endpoint", metavar="NAME", help="A named endpoint of the config file ([endpoints.NAME])."
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDER_NAMES),
    help="Batch provider (default: the endpoint's, else detected from the lines).",
)
@click.option("--url", help="OpenAI request URL of the batch (default: the url of the lines).")
@click.option("--queue", help="Queue of the batch's jobs (default: the file's name).")
@click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="Batch metadata.")
@click.option("--model-check", is_flag=True, help="Ask the provider whether the model exists.")
@click.option("--wait", is_flag=True, help="Poll until the results are in.")
@tag_option("the batch and its jobs")
@click.option(
    "--estimate",
    is_flag=True,
    help="Print expected tokens and the cost range at the batch price; submit nothing.",
)
@click.option(
    "--max-usd",
    type=Checked(non_negative_float, "USD"),
    default=None,
    help="Refuse the file when its upper cost estimate exceeds this.",
)
@click.option(
    "--interval",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between polls (--wait).",
)
def submit(**_: Any) -> Any:
    """Validate a batch-style JSONL file and submit it: OpenAI lines (custom_id, method, url,
    body) or Anthropic lines (custom_id, params), detected from the file."""
    return invoke(cmd_submit, creates=True)


@click.group(
    cls=Group, epilog=example("batchdash batches list --active", "batchdash batches show 3")
)
def batches_group() -> None:
    """Remote batches."""


@batches_group.command(
    "list",
    epilog=example(
        "batchdash batches list --active --json",
        "batchdash batches list --state failed --state expired --since 7d",
    ),
)
@db_option()
@click.option("--active", is_flag=True, help="Only batches still running.")
@click.option(
    "--state",
    multiple=True,
    type=click.Choice([s.value for s in BatchState]),
    help="Only batches in this normalized state (repeatable).",
)
@time_options("batches")
@click.option("--limit", type=int, default=None, help="At most N batches.")
@click.option("--json", is_flag=True, help="As a JSON document.")
def batches_list(**_: Any) -> Any:
    """Batches, newest first."""
    return invoke(cmd_list)


@batches_group.command("show", epilog=example("batchdash batches show batch_abc123 --json"))
@_BATCH_ARG
@db_option()
@click.option("--json", is_flag=True, help="As a JSON document.")
def batches_show(**_: Any) -> Any:
    """One batch: counts by outcome, errors, files, times. BATCH is a local or provider id."""
    return invoke(cmd_show)


@batches_group.command("cancel", epilog=example("batchdash batches cancel 3"))
@_BATCH_ARG
@db_option()
def batches_cancel(**_: Any) -> Any:
    """Ask the provider to cancel a batch. BATCH is a local or provider id."""
    return invoke(cmd_cancel)


@batches_group.command("resubmit", epilog=example("batchdash batches resubmit 3"))
@_BATCH_ARG
@db_option()
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also send lines whose error will not pass on retry (invalid request, context length).",
)
def batches_resubmit(**_: Any) -> Any:
    """Send the failed, expired, cancelled and missing lines again as a child batch."""
    return invoke(cmd_resubmit)


@batches_group.command(
    "download", epilog=example("batchdash batches download 3 --format csv -o results.csv")
)
@_BATCH_ARG
@db_option()
@click.option(
    "--format",
    type=click.Choice(("jsonl", "csv")),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@output_option()
@click.option(
    "--delete",
    is_flag=True,
    help="Then delete the batch at the provider (Anthropic: the batch; OpenAI: its files).",
)
def batches_download(**_: Any) -> Any:
    """Write a batch's results as JSONL or CSV. BATCH is a local or provider id."""
    return invoke(cmd_download)


@batches_group.command("import", epilog=example("batchdash batches import --queue legacy"))
@db_option()
@click.option("--queue", default="imported", show_default=True, help="Queue for their jobs.")
@_PROVIDER_OPTION
def batches_import(**_: Any) -> Any:
    """Track every batch of the account (submitted elsewhere)."""
    return invoke(cmd_import)


@batches_group.command("reconcile", epilog=example("batchdash batches reconcile"))
@db_option()
def batches_reconcile(**_: Any) -> Any:
    """Finish submissions interrupted by a crash."""
    return invoke(cmd_reconcile)
