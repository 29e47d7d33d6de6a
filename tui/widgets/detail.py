"""The job detail pane: payload, result or error, attempts, timeline, worker, QA.

Everything here may come from a model or a remote API, so it is rendered as `rich.text.Text`
and never parsed as markup. Long texts are shown up to DETAIL_TEXT_CHARS characters with a
marker saying how much more there is and the command that prints all of it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from batchdash.core.snapshot import DETAIL_TEXT_CHARS, JobDetail
from batchdash.tui import styles
from batchdash.tui.fmt import count, duration, money, one_line, size
from batchdash.tui.stage_text import progress_text, timeline_rows

#: Characters of a QA note or timeline detail shown on its line.
NOTE_CHARS = 300


def clock_time(at: float) -> str:
    """Wall-clock time of a timestamp (local time zone)."""
    return time.strftime("%H:%M:%S", time.localtime(at))


class JobDetailPane(VerticalScroll):
    """A scrollable view of one job; it redraws only when the job's data changed."""

    can_focus = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: JobDetail | None = None

    def compose(self) -> Any:
        yield Static(Text("No job selected.", styles.MUTED), id="detail-body")

    def show(self, detail: JobDetail | None, now: float) -> None:
        """Render `detail` unless it is what is already shown."""
        if detail == self._shown:
            return
        if detail is None or self._shown is None or detail.job.id != self._shown.job.id:
            # Immediately: a deferred scroll could land after the next refresh reads it.
            self.scroll_home(animate=False, immediate=True)  # another job: start at its top
        self._shown = detail
        body = self.query_one("#detail-body", Static)
        body.update(
            Text("No job selected.", styles.MUTED) if detail is None else render_detail(detail, now)
        )


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def clipped(text: str, job_id: int, style: str = "", full_bytes: int | None = None) -> Text:
    """`text` up to DETAIL_TEXT_CHARS characters, then a marker saying what was left out.

    `full_bytes` is the size of the whole text when `text` is already only its head (as the
    store reads it); otherwise `text` is whole.
    """
    head = text[:DETAIL_TEXT_CHARS]
    if full_bytes is None:
        full_bytes = len(text.encode()) if len(text) > DETAIL_TEXT_CHARS else 0
    rest = full_bytes - len(head.encode())
    shown = Text(head, style)
    if rest > 0:
        shown.append(
            f"\n… {size(rest)} more; `batchdash jobs show {job_id}` for all", "bold yellow"
        )
    return shown


def render_detail(d: JobDetail, now: float) -> RenderableType:
    """The job as a group of untrusted-safe renderables."""
    job = d.job
    head = Text()
    head.append(f"#{job.id} ", "bold")
    head.append(job.key, "bold")
    head.append(f"  queue {job.queue}  ")
    head.append(job.status, styles.STATUS.get(job.status, ""))
    head.append(f"  attempt {job.attempts}/{job.max_attempts}")
    if d.next_retry_at is not None:
        head.append(
            f"  retrying, next at {clock_time(d.next_retry_at)} "
            f"(in {duration(d.next_retry_at - now)})",
            "yellow",
        )
    facts = Text()
    facts.append("worker ", "bold")
    facts.append(job.worker_id or "-")
    facts.append("  handler ", "bold")
    facts.append(job.handler)
    if d.tags:
        facts.append("  tags ", "bold")
        facts.append(" ".join(d.tags))
    if d.batch is not None:
        facts.append("  batch ", "bold")
        facts.append(f"{d.batch.id} ({d.batch.remote_id or 'not sent'}, {d.batch.state})")
    facts.append("  tokens ", "bold")
    facts.append(f"{count(job.input_tokens or 0)} in / {count(job.output_tokens or 0)} out")
    facts.append("  cost ", "bold")
    facts.append(money(job.cost))
    facts.append("  ran ", "bold")
    facts.append(duration(job.duration))
    if progress_text(job):
        facts.append("  progress ", "bold")
        facts.append(progress_text(job))
    parts: list[RenderableType] = [head, facts]
    if job.error:
        parts += [Text("error", "bold red"), clipped(job.error, job.id, "red", d.cut.get("error"))]
    if job.result is not None:
        result = clipped(_json(job.result), job.id, full_bytes=d.cut.get("result"))
        parts += [Text("result", "bold green"), result]
    payload = clipped(_json(job.payload), job.id, full_bytes=d.cut.get("payload"))
    parts += [Text("payload", "bold"), payload]
    if d.qa:
        parts += [Text("QA scores", "bold"), _qa_table(d)]
    if d.stages:
        parts += [Text("stages", "bold"), _stages(d, now)]
    parts += [Text("timeline", "bold"), _timeline(d)]
    return Group(*parts)


#: How each stage state is drawn (`failed: …` by its prefix).
_STAGE_STYLES = {"ok": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}


def _stages(d: JobDetail, now: float) -> Table:
    """The per-attempt stage timeline: attempt, stage, how long it took, how it ended."""
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False)
    for label in ("ATTEMPT", "STAGE", "TOOK"):
        table.add_column(label, no_wrap=True)
    table.add_column("STATE")
    for attempt, name, took, state in timeline_rows(d.stages, d.job, now, NOTE_CHARS):
        style = _STAGE_STYLES.get(state.partition(":")[0], "")
        table.add_row(Text(attempt), Text(name), Text(took), Text(state, style))
    return table


def _qa_table(d: JobDetail) -> Table:
    dims = sorted({dim for r in d.qa for dim in r.scores})
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False)
    table.add_column("JUDGE", no_wrap=True)
    for dim in dims:
        table.add_column(dim.upper(), justify="right")
    table.add_column("NOTE")
    for r in d.qa:
        note = Text(one_line(r.error or r.comment or "", NOTE_CHARS), "red" if r.error else "")
        scores = [f"{r.scores[dim]:g}" if dim in r.scores else "-" for dim in dims]
        table.add_row(Text(r.judge), *scores, note)
    return table


def _timeline(d: JobDetail) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for e in d.events:
        detail = Text(one_line(e.detail or "", NOTE_CHARS))
        table.add_row(clock_time(e.at), Text(e.kind), Text(e.worker_id or ""), detail)
    return table
