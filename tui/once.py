"""`batchdash --once [--json] [--section …] [--poll]`: the dashboard's picture, printed once.

For cron and CI: overview, statuses per queue, active and recent batches, workers and the
QA summary, as text (coloured through rich only on a terminal) or as JSON with stable
top-level keys. Exit 0 when nothing needs attention, 1 when something does (failed jobs or
batches, stale or dead workers), 2 on error. This path never imports textual, and imports
openai only with `--poll` (through core.sync).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from batchdash.core import snapshot
from batchdash.core.budget import budget_paused, queue_spend_text
from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.errors import DatabaseError
from batchdash.core.models import Batch, JobStatus, QueueInfo
from batchdash.tui import styles
from batchdash.tui.cli.options import SECTIONS
from batchdash.tui.cli.runner import (
    EXIT_ATTENTION,
    EXIT_OK,
    CliError,
    db_location,
    run_async,
    use_color,
)
from batchdash.tui.cli.views import SCHEMA_VERSION, write_json
from batchdash.tui.fmt import (
    age,
    count,
    duration,
    one_line,
    per_minute,
    spend_text,
    stall_text,
    table,
)
from batchdash.tui.fmt import eta as eta_text

#: A cell of a text table: its text and a rich style (None = plain).
Cell = tuple[str, str | None]


#: What a terminal needs to clear the screen and go home before the next picture.
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def run_once(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print the report for `args` (again every `--watch` seconds) and return the exit code."""
    every = args.once_watch
    if every is None:
        return _report(args, out)
    if every <= 0:
        raise CliError("--watch must be > 0 seconds")
    return watch(args, every, out)


def watch(args: argparse.Namespace, every: float, out: TextIO) -> int:
    """Print the report every `every` seconds until Ctrl-C, then exit 0: each picture
    says itself whether something needs attention. On a terminal each picture replaces
    the last; in a pipe or log they follow each other, a blank line apart. A picture that
    cannot be read is one error line, and the watch goes on."""
    clear = bool(getattr(out, "isatty", lambda: False)())
    first = True
    try:
        while True:
            started = time.monotonic()
            out.write(CLEAR_SCREEN if clear else "" if first else "\n")
            first = False
            try:
                _report(args, out)
            except CliError as exc:
                print(f"batchdash: error: {exc}", file=sys.stderr, flush=True)
            out.flush()
            time.sleep(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return EXIT_OK


def _report(args: argparse.Namespace, out: TextIO) -> int:
    """Print the report once and return its exit code."""
    where = db_location(args)
    now = time.time()
    if args.once_poll:
        _poll(args, sys.stderr)
    try:
        with open_sync_store(where, readonly=True) as db:
            report = db.read(lambda tx: snapshot.summary(tx, now))
    except DatabaseError as exc:
        raise CliError(str(exc)) from exc
    if args.once_json:
        write_json(to_json(report, where), out)
    else:
        write_text(report, where, args.once_sections or SECTIONS, out)
    return EXIT_ATTENTION if report.attention else EXIT_OK


def _poll(args: argparse.Namespace, err: TextIO) -> None:
    """Refresh remote batches through core.sync before reading (only with `--poll`)."""
    from batchdash.core.sync import run_cycle  # here: only --poll pays for openai

    async def cycle(db: Any) -> Any:
        return await run_cycle(db, remote=True)

    report = run_async(cycle, args)
    for error in getattr(report, "errors", []):
        print(f"batchdash: poll: {one_line(str(error), 200)}", file=err)


# --------------------------------------------------------------------------- JSON


def _iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def to_json(report: snapshot.Summary, where: DbLocation) -> dict[str, Any]:
    """The report as JSON-ready data (the contract of tui/cli/views.py, epoch-second times)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": report.now,
        "db": where.display,
        "db_exists": True,
        "jobs": report.overview.to_dict(),
        "queues": [
            {
                "name": q.name,
                "paused": q.paused,
                "pause_reason": q.pause_reason,
                "counts": _counts(q),
                "total": q.total,
                "budget_usd": q.budget_usd,
                "spend_usd": round(q.spend_usd, 6),
            }
            for q in report.queues
        ],
        "batches": [row.to_dict() for row in report.batches],  # = views.batch_json
        "workers": [row.to_dict(report.now) for row in report.workers],
        "qa": snapshot.qa_to_dict(report.qa),
        "attention": report.attention,
    }


def _counts(q: QueueInfo) -> dict[str, int]:
    return {s.value: q.counts.get(s.value, 0) for s in JobStatus}


# --------------------------------------------------------------------------- text


def write_text(
    report: snapshot.Summary, where: DbLocation, sections: Sequence[str], out: TextIO
) -> None:
    """Write the chosen sections as aligned text; colour only when `out` is a terminal."""
    printer = _Printer(out, color=use_color(out))
    printer.line([(f"batchdash  {where.display}  {_iso(report.now)}", "bold")])
    for name in SECTIONS:
        if name in sections:
            _SECTION_WRITERS[name](report, printer)
    if report.attention:
        printer.line([("needs attention: ", styles.ALERT), ("; ".join(report.attention), None)])
    else:
        printer.line([("nothing needs attention", "green")])


class _Printer:
    """Lines of styled segments and tables, printed plain or through rich."""

    def __init__(self, out: TextIO, *, color: bool) -> None:
        self.out = out
        self.console: Any = None
        if color:
            from rich.console import Console

            self.console = Console(file=out, highlight=False, soft_wrap=True)

    def line(self, segments: Sequence[Cell]) -> None:
        if self.console is None:
            self.out.write("".join(text for text, _ in segments) + "\n")
            return
        from rich.text import Text

        self.console.print(Text.assemble(*((t, s or "") for t, s in segments)))

    def title(self, text: str) -> None:
        self.out.write("\n")
        self.line([(text, "bold underline")])

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        if self.console is None:
            plain = ([text for text, _ in row] for row in rows)
            for text_line in table(header, plain):
                self.out.write("  " + text_line + "\n")
            return
        from rich.table import Table
        from rich.text import Text

        grid = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False)
        for name in header:
            grid.add_column(name, header_style="bold", no_wrap=True)
        for row in rows:
            grid.add_row(*(Text(text, style=style or "") for text, style in row))
        self.console.print(grid, style="", new_line_start=False)


def _overview(report: snapshot.Summary, p: _Printer) -> None:
    head = report.overview
    p.title("jobs")
    parts: list[Cell] = [(f"  {count(head.total)} total: ", None)]
    for status in JobStatus:
        n = head.counts.get(status, 0)
        parts.append((f"{count(n)} {status}", styles.STATUS[status] if n else styles.MUTED))
        if status == JobStatus.PENDING:
            parts.append((pending_notes(head), None))
        parts.append(("  ", None))
    p.line(parts)
    p.line(
        [
            (f"  throughput {rate_phrase(head)} ", None),
            (styles.spark(head.throughput), "cyan"),
            (f" {window_phrase(head)}  {eta_phrase(head)}", None),
        ]
    )
    p.line(
        [
            (f"  spend {spend_text(head.work.cost, head.qa.cost)}", None),
            (
                f"  tokens {count(head.work.input_tokens)} in / "
                f"{count(head.work.output_tokens)} out",
                None,
            ),
        ]
    )


def pending_notes(head: snapshot.Overview) -> str:
    """` (2 retrying, 15 paused)` after the pending count ('' when there is nothing to say)."""
    notes = [f"{count(head.retrying)} retrying"] if head.retrying else []
    if head.stalled:
        notes.append(stall_text(head.stalled, head.stall_reason))
    return f" ({', '.join(notes)})" if notes else ""


def rate_phrase(head: snapshot.Overview) -> str:
    """Local throughput: `238.0/min`, `idle`, or `no rate yet` before the first local finish."""
    if head.idle:
        return "idle"
    return "no rate yet" if head.rate_per_minute is None else per_minute(head.rate_per_minute)


def eta_phrase(head: snapshot.Overview) -> str:
    """`ETA 4m05s`, `ETA done`, or why there is none: `no live worker`, `queue paused`."""
    if head.eta_seconds is not None:
        return f"ETA {eta_text(head.eta_seconds)}"
    if head.eta_note in ("no live worker", "queue paused"):
        return head.eta_note
    return "ETA unknown"


def window_phrase(head: snapshot.Overview) -> str:
    """What the sparkline covers: `last 15m`."""
    return f"last {age(head.window_seconds)}"


def queue_state(q: QueueInfo) -> str:
    """`active`, `paused`, or `paused (budget)` when its budget paused it."""
    if not q.paused:
        return "active"
    return "paused (budget)" if budget_paused(q) else "paused"


def _queues(report: snapshot.Summary, p: _Printer) -> None:
    p.title("queues")
    if not report.queues:
        p.line([("  no queues yet (enqueue jobs with `batchdash enqueue FILE`)", styles.MUTED)])
        return
    header = ["QUEUE", "STATE", *(s.value.upper() for s in JobStatus), "TOTAL", "SPEND"]
    rows = [
        [
            (q.name, None),
            (queue_state(q), "yellow") if q.paused else ("active", None),
            *(
                (count(q.counts.get(s, 0)), styles.STATUS[s] if q.counts.get(s) else None)
                for s in JobStatus
            ),
            (count(q.total), None),
            (queue_spend_text(q), styles.ALERT if budget_paused(q) else None),
        ]
        for q in report.queues
    ]
    p.table(header, rows)


def _batches(report: snapshot.Summary, p: _Printer) -> None:
    p.title("batches")
    if not report.batches:
        p.line([("  no remote batches", styles.MUTED)])
        return
    rows = [
        [
            (str(row.batch.id), None),
            (row.batch.remote_id or "-", None),
            (row.batch.queue, None),
            (row.batch.state, styles.BATCH.get(row.batch.state)),
            (row.batch.raw_status or "-", None),
            (f"{styles.progress_bar(row.progress, 10)} {row.progress:4.0%}", None),
            (batch_lines_text(row.batch), None),
            (batch_eta_text(row), None),
            (batch_timing_text(row), None),
            (batch_problem(row), styles.ALERT),
        ]
        for row in report.batches
    ]
    header = ["ID", "REMOTE", "QUEUE", "STATE", "RAW", "PROGRESS", "LINES", "ETA", "TIME", "ERROR"]
    p.table(header, rows)


def batch_eta_text(row: snapshot.BatchRow) -> str:
    """An active batch's own ETA (`1h02m`, or `unknown` before its counts tell); '' once over."""
    if not row.active:
        return ""
    return "unknown" if row.eta_seconds is None else duration(row.eta_seconds)


def batch_timing_text(row: snapshot.BatchRow) -> str:
    """`expires in 23h10m`, `finalizing for 4m05s`, `ended 2h ago`."""
    if row.seconds is None:
        return row.timing if row.timing != "ended" else "-"
    if row.timing in ("ended", "polled"):
        return f"{row.timing} {age(row.seconds)} ago"
    return f"{row.timing} {duration(row.seconds)}"


def provider_label(batch: Batch) -> str:
    """`anthropic`, or `openai@azure` for a batch sent through the named endpoint `azure`."""
    return f"{batch.provider}@{batch.endpoint_name}" if batch.endpoint_name else batch.provider


def batch_lines_text(batch: Batch) -> str:
    """`10 ok · 10 failed / 20`: succeeded and failed lines apart, never one sum."""
    if not batch.total:
        return "-"
    failed = f" · {count(batch.failed)} failed" if batch.failed else ""
    return f"{count(batch.completed)} ok{failed} / {count(batch.total)}"


def batch_error_text(error: Any) -> str:
    """One provider error of a batch as text: `code: message, line N`."""
    if not isinstance(error, dict):
        return str(error)
    text = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    line = error.get("line")
    return f"{text}, line {line}" if line is not None else text


def batch_problem(row: snapshot.BatchRow) -> str:
    """The batch's poll error or first provider error, on one line ('' when none)."""
    errors = row.batch.errors
    if row.batch.poll_error:
        return one_line(row.batch.poll_error, 50)
    if isinstance(errors, dict):  # the provider's whole `errors` object
        errors = errors.get("data")
    if not errors:
        return ""
    first = errors[0] if isinstance(errors, list) else errors
    return one_line(batch_error_text(first), 50)


def _workers(report: snapshot.Summary, p: _Printer) -> None:
    p.title("workers")
    if not report.workers:
        p.line([("  no workers have run on this database", styles.MUTED)])
        return
    rows = [
        [
            (w.worker.id, None),
            (w.worker.state, None),
            (w.health, styles.HEALTH.get(w.health)),
            (age(w.age), styles.HEALTH.get(w.health)),
            (",".join(map(str, w.worker.current_jobs)) or "-", None),
            (count(w.worker.done), None),
            (count(w.worker.failed), "red" if w.worker.failed else None),
            (w.worker.host, None),
            (str(w.worker.pid), None),
        ]
        for w in report.workers
    ]
    header = ["ID", "STATE", "HEALTH", "HEARTBEAT", "JOBS", "DONE", "FAILED", "HOST", "PID"]
    p.table(header, rows)


def _qa(report: snapshot.Summary, p: _Printer) -> None:
    p.title("qa")
    qa = report.qa
    if qa.empty:
        p.line([("  no QA scores yet", styles.MUTED)])
        return
    p.line([(f"  {count(qa.results)} verdicts, {count(qa.errors)} judge errors", None)])
    rows = [
        [
            (s.judge, None),
            (s.dimension, None),
            (count(s.n), None),
            (f"{s.mean:.2f}", None),
            (f"{s.minimum:g}", None),
            (f"{s.maximum:g}", None),
        ]
        for s in qa.stats
    ]
    p.table(["JUDGE", "DIMENSION", "N", "MEAN", "MIN", "MAX"], rows)
    for line in _qa_lists(qa):
        p.line([(line, None)])


def _qa_lists(qa: Any) -> Iterator[str]:
    if qa.worst:
        worst = ", ".join(f"#{j} {k} {o:g} ({judge})" for j, k, judge, o in qa.worst[:5])
        yield f"  worst: {worst}"
    if qa.disagreements:
        spread = ", ".join(f"#{j} {k} {lo:g}–{hi:g}" for j, k, lo, hi in qa.disagreements[:5])
        yield f"  judges disagree: {spread}"


_SECTION_WRITERS = {
    "overview": _overview,
    "queues": _queues,
    "batches": _batches,
    "workers": _workers,
    "qa": _qa,
}
