"""QA commands: `qa run` (judge stored results), `qa show`, `qa summary`, `qa rubric`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import click

from batchdash.core import qa, snapshot
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import named
from batchdash.core.models import JobFilter, JobStatus
from batchdash.core.qa_models import DISAGREEMENT_THRESHOLD, QASummary
from batchdash.tui.cli.common import (
    EXIT_ATTENTION,
    EXIT_OK,
    CliError,
    Group,
    db_option,
    example,
    invoke,
    open_sync,
    run_async,
)
from batchdash.tui.cli.views import result_lines, result_to_dict, write_json
from batchdash.tui.fmt import count, money, table

# --------------------------------------------------------------------------- run


def _run_filter(args: argparse.Namespace, tx: Tx) -> JobFilter:
    """The jobs `qa run` considers; unknown queues or batches are one-line errors."""
    for name in args.queue:
        tx.queues.require_queue(name)
    batch_id = tx.batches.get_batch(args.batch).id if args.batch is not None else None
    return JobFilter(
        statuses=tuple(args.status) or (JobStatus.SUCCEEDED,),
        queues=tuple(args.queue),
        batch_id=batch_id,
    )


def cmd_qa_run(args: argparse.Namespace) -> int:
    """Judge a deterministic sample of stored results; pairs already scored are skipped.

    Exit 0 when every judgement worked, 1 when some failed (the count and the most
    frequent reason on stderr), 2 when all of them did, with that reason on one line.
    """
    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    judges = qa.parse_judges(args.judges)
    sample = qa.parse_sample(args.sample)
    if args.endpoint is not None:
        named(args.endpoint)  # an unknown name: refused before any work
    if args.as_batch:
        return _run_as_batch(args, judges, sample)

    async def run(db: Store) -> tuple[int, qa.RunStats]:
        ids = await db.read(lambda tx: qa.sample_ids(tx, _run_filter(args, tx), sample))
        # No key, or an endpoint of another provider than a judge's: one line from main().
        client = qa.open_client(judges, args.endpoint)
        try:
            stats = await qa.run_qa(
                db,
                client,
                ids,
                judges,
                rescore=args.rescore,
                concurrency=args.concurrency,
                progress=_show_progress if sys.stderr.isatty() else None,
            )
        finally:
            await client.close()
        return len(ids), stats

    jobs, stats = run_async(run, args)
    if sys.stderr.isatty() and (stats.scored or stats.errors):
        print(file=sys.stderr)  # end the progress line
    if not jobs:
        print("nothing to judge: no job matches")
        return EXIT_OK
    cost = money(stats.cost) + (f" (+{stats.unpriced} unpriced)" if stats.unpriced else "")
    unmade = f", {count(stats.unmade)} not made (API key refused)" if stats.unmade else ""
    print(
        f"judged {count(jobs)} jobs with {', '.join(judges)}: {count(stats.scored)} scored, "
        f"{count(stats.errors)} errors{unmade}, {count(stats.skipped)} skipped "
        f"(already scored); cost {cost}"
    )
    return _run_exit(stats)


def _run_exit(stats: qa.RunStats) -> int:
    """0 when every judgement worked, 1 when some failed, 2 when all did (a bad key…)."""
    if not stats.errors:
        return EXIT_OK
    if not stats.scored:
        rest = f"; the other {count(stats.unmade)} were not made" if stats.unmade else ""
        raise CliError(f"all {count(stats.errors)} judge calls failed: {stats.top_reason()}{rest}")
    print(
        f"batchdash: {count(stats.errors)} of {count(stats.errors + stats.scored)} judge calls "
        f"failed (most often: {stats.top_reason()}); `batchdash qa show JOB` has each error, "
        "a rerun retries them",
        file=sys.stderr,
    )
    return EXIT_ATTENTION


def _show_progress(stats: qa.RunStats) -> None:
    """A live count on the terminal (overwritten in place; the summary follows)."""
    print(
        f"\r{count(stats.scored)} scored, {count(stats.errors)} errors, "
        f"{count(stats.skipped)} skipped",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _run_as_batch(args: argparse.Namespace, judges: tuple[str, ...], sample: qa.Sample) -> int:
    """Submit the judge requests as remote batches; verdicts arrive with the results."""

    async def run(db: Store) -> tuple[int, list[int], qa.BatchFiles]:
        ids = await db.read(lambda tx: qa.sample_ids(tx, _run_filter(args, tx), sample))
        batch_ids, files = await qa.submit_batches(
            db, ids, judges, rescore=args.rescore, endpoint_name=args.endpoint
        )
        return len(ids), batch_ids, files

    jobs, batch_ids, files = run_async(run, args)
    skipped = f"{count(files.skipped)} skipped (already scored or waiting in a QA batch)"
    if not batch_ids:
        print(f"nothing to submit: {count(jobs)} jobs, {skipped}")
        return EXIT_OK
    queues = sorted({qa.QA_QUEUE_PREFIX + queue for queue, _ in files.paths})
    print(
        f"submitted {count(files.lines)} judge requests for {count(jobs)} jobs as batches "
        f"{', '.join(map(str, batch_ids))} into {', '.join(queues)}; {skipped}. "
        "Verdicts are stored when the results are ingested (batchdash poll or the dashboard)."
    )
    return EXIT_OK


def cmd_qa_collect(args: argparse.Namespace) -> int:
    """Store the verdicts of QA batches whose results are ingested (the poll cycle does too)."""
    done = run_async(qa.collect_batches, args)
    print(f"collected verdicts of {done} QA batches")
    return EXIT_OK


# --------------------------------------------------------------------------- show


def cmd_qa_show(args: argparse.Namespace) -> int:
    """Every judge's scores (or error) for one job."""
    with open_sync(args, readonly=True) as db:
        job = db.read(lambda tx: tx.jobs.get_job(args.id))
        results = db.read(lambda tx: tx.qa.qa_results_for_job(job.id))
    if args.json:
        # The job and verdict shapes of `jobs show --json`: one shape per entity.
        write_json({"job": job.to_dict(), "qa": [result_to_dict(r) for r in results]})
        return EXIT_OK
    print(f"job {job.id}  {job.key}  (queue {job.queue})")
    for result in results:
        for line in result_lines(result):
            print(f"  {line}")
    if not results:
        print("  not judged yet (batchdash qa run --queue QUEUE)")
    return EXIT_OK


# --------------------------------------------------------------------------- summary


def summary_lines(summary: QASummary) -> list[str]:
    """The QA summary as text: stats table, distribution, worst jobs, disagreements."""
    if summary.empty:
        return ["no QA results yet"]
    lines = [f"{count(summary.results)} verdicts, {count(summary.errors)} errors"]
    rows = (
        (s.judge, s.dimension, str(s.n), f"{s.mean:.2f}", f"{s.minimum:g}", f"{s.maximum:g}")
        for s in summary.stats
    )
    lines += table(("JUDGE", "DIMENSION", "N", "MEAN", "MIN", "MAX"), rows)
    biggest = max(summary.distribution.values(), default=0)
    lines.append("overall distribution:")
    for score in range(qa.MIN_SCORE, qa.MAX_SCORE + 1):
        n = summary.distribution.get(score, 0)
        bar = "#" * (round(40 * n / biggest) if biggest else 0)
        lines.append(f"  {score:>2} {n:>6}  {bar}".rstrip())
    if summary.worst:
        lines.append("worst:")
        lines += (f"  job {j}  {k}  {judge}: {o:g}" for j, k, judge, o in summary.worst)
    if summary.disagreements:
        lines.append(f"judges disagree (≥{DISAGREEMENT_THRESHOLD:g} apart):")
        lines += (f"  job {j}  {k}: {lo:g}–{hi:g}" for j, k, lo, hi in summary.disagreements)
    return lines


def cmd_qa_summary(args: argparse.Namespace) -> int:
    """Aggregates per judge and dimension (computed in SQL), optionally for one queue."""
    with open_sync(args, readonly=True) as db:
        if args.queue is not None:
            db.read(lambda tx: tx.queues.require_queue(args.queue))
        summary = db.read(lambda tx: tx.qa.qa_summary(queue=args.queue, worst=args.worst))
    if args.json:
        write_json({"qa": snapshot.qa_to_dict(summary)})
    else:
        for line in summary_lines(summary):
            print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- rubric


def cmd_qa_rubric(args: argparse.Namespace) -> int:
    """Set a queue's rubric from a file, reset it, or print the one in effect."""
    rubric_json: str | None = None
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.file}: {exc.strerror or exc}") from None
        rubric_json = qa.Rubric.from_json(text, str(args.file)).to_json()
    with open_sync(args) as db:
        if args.file is not None or args.reset:
            db.write(lambda tx: tx.queues.set_qa_rubric(args.queue, rubric_json))
        rubric = db.read(lambda tx: qa.queue_rubric(tx, args.queue))
    # Not a `--json` document of the contract (no schema_version): this is the rubric file
    # format, printed so that it can be edited and fed back with `--file`.
    data = {"prompt": rubric.prompt, "dimensions": list(rubric.dimensions)}
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return EXIT_OK


# --------------------------------------------------------------------------- command line


@click.group(cls=Group, epilog=example("batchdash qa run --sample 10%", "batchdash qa summary"))
def qa_group() -> None:
    """Judge-model quality scores."""


@qa_group.command(
    "run",
    epilog=example("batchdash qa run --queue summaries --sample 200 --judges gpt-4o-mini,gpt-4o")
    + "\n\nExit status: 0 every judgement worked, 1 some failed (count and reason on "
    "stderr), 2 all failed (e.g. a rejected API key) or bad input.",
)
@db_option()
@click.option("--queue", multiple=True, help="Only these queues.")
@click.option("--batch", default=None, help="Only jobs of this batch (local or remote id).")
@click.option(
    "--status",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus]),
    help="Job statuses to judge (default: succeeded).",
)
@click.option(
    "--sample",
    default="all",
    metavar="N|FRACTION",
    help="Judge N jobs or a fraction (0.1, 10%), the same ones on every rerun.",
)
@click.option("--judges", default=None, metavar="A,B", help="Judge models (gpt-4o-mini).")
@click.option("--rescore", is_flag=True, help="Replace existing scores.")
@click.option(
    "--as-batch",
    is_flag=True,
    help="Submit the judge requests as remote batches (half price, results within 24h).",
)
@click.option("--concurrency", type=int, default=8, show_default=True, help="Judge calls at once.")
@click.option(
    "--endpoint",
    metavar="NAME",
    default=None,
    help="A named endpoint of the config file ([endpoints.NAME]) for the judge calls.",
)
def qa_run(**_: Any) -> Any:
    """Score stored results with judge models."""
    return invoke(cmd_qa_run)


@qa_group.command("collect", epilog=example("batchdash qa collect"))
@db_option()
def qa_collect(**_: Any) -> Any:
    """Store verdicts of ingested QA batches (poll does this)."""
    return invoke(cmd_qa_collect)


@qa_group.command("show", epilog=example("batchdash qa show 42 --json"))
@click.argument("id", type=int)
@db_option()
@click.option("--json", is_flag=True, help="As a JSON document.")
def qa_show(**_: Any) -> Any:
    """Every judge's verdict on one job."""
    return invoke(cmd_qa_show)


@qa_group.command("summary", epilog=example("batchdash qa summary --queue summaries --worst 5"))
@db_option()
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--worst", type=int, default=10, show_default=True, help="How many worst jobs.")
@click.option("--json", is_flag=True, help="As a JSON document.")
def qa_summary(**_: Any) -> Any:
    """Averages per judge and dimension, and the worst jobs."""
    return invoke(cmd_qa_summary)


@qa_group.command(
    "rubric",
    epilog=example(
        "batchdash qa rubric summaries --file rubric.json", "batchdash qa rubric summaries"
    ),
)
@click.argument("queue")
@db_option()
@click.option(
    "--file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='JSON {"prompt": ..., "dimensions": [...]}.',
)
@click.option("--reset", is_flag=True, help="Back to the default rubric.")
def qa_rubric(**params: Any) -> Any:
    """Show or set a queue's judging rubric."""
    if params["file"] is not None and params["reset"]:
        raise click.UsageError("argument --reset: not allowed with argument --file")
    return invoke(cmd_qa_rubric)
