"""Batch detail: one remote batch, its items by outcome, and its timeline."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from batchdash.core.models import Batch, ItemOutcome
from batchdash.core.snapshot import BatchDetail
from batchdash.tui import styles
from batchdash.tui.fmt import count, one_line
from batchdash.tui.once import (
    batch_eta_text,
    batch_lines_text,
    batch_problem,
    batch_timing_text,
    provider_label,
)
from batchdash.tui.widgets.detail import NOTE_CHARS, clock_time
from batchdash.tui.widgets.table import sync_rows

#: `o` cycles the items shown through these outcomes (None = every item).
OUTCOMES: tuple[str | None, ...] = (None, *(o.value for o in ItemOutcome))


class BatchDetailScreen(Screen[None]):
    """Fed by the app's refresh loop while it is on top (`show`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="batch-back"),
        Binding("o", "cycle_outcome", "Items by outcome", id="batch-outcome"),
        Binding("c", "app.cancel_batch", "Cancel batch", id="batch-cancel"),
        Binding("R", "app.resubmit_batch", "Resubmit failures", id="batch-resubmit"),
    ]

    def __init__(self, batch_id: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.outcome: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"batch {self.batch_id}: loading…"), id="batch-head")
            yield DataTable(id="batch-items", cursor_type="row")
            yield Static(id="batch-events")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#batch-items", DataTable)
        for key, label, width in (
            ("custom_id", "CUSTOM_ID", 24),
            ("outcome", "OUTCOME", 10),
            ("job", "JOB", 8),
            ("status", "HTTP", 5),
            ("code", "CODE", 18),
            ("message", "MESSAGE", 50),
        ):
            table.add_column(label, key=key, width=width)

    def action_back(self) -> None:
        """Return to the dashboard."""
        self.dismiss(None)

    def action_cycle_outcome(self) -> None:
        """Show the next outcome's items (all → pending → succeeded → … → all)."""
        self.outcome = OUTCOMES[(OUTCOMES.index(self.outcome) + 1) % len(OUTCOMES)]
        self.app.show_batch_outcome(self.outcome)  # type: ignore[attr-defined]

    def show(self, detail: BatchDetail | None, now: float) -> None:
        """Render the batch; a batch that disappeared says so."""
        head = self.query_one("#batch-head", Static)
        if detail is None:
            head.update(Text(f"batch {self.batch_id} no longer exists", styles.ALERT))
            return
        head.update(_head(detail))
        rows = [
            (
                item.custom_id,
                (
                    Text(item.custom_id),
                    Text(item.outcome, _OUTCOME_STYLE.get(item.outcome, "")),
                    str(item.job_id or "-"),
                    str(item.status_code or "-"),
                    Text(item.error_code or ""),
                    Text(one_line(item.error_message or "", 200), "red"),
                ),
            )
            for item in detail.items
        ]
        sync_rows(self.query_one("#batch-items", DataTable), rows)
        events = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
        for e in detail.events[-6:]:
            note = Text(one_line(e.detail or "", NOTE_CHARS))
            events.add_row(clock_time(e.at), Text(e.kind), note)
        self.query_one("#batch-events", Static).update(events)


_OUTCOME_STYLE = {
    "succeeded": "green",
    "pending": "yellow",
    "processing": "yellow",
    "cancelled": "bright_black",
    "canceled": "bright_black",
}


#: Anthropic's request counts, in the order its batch object lists them.
ANTHROPIC_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def _anthropic_counts(b: Batch) -> Text:
    """Anthropic's own request counts as it last reported them (nothing made up before)."""
    text = Text("requests ", "bold")
    if not isinstance(b.request_counts, dict):
        text.append("not reported yet\n", styles.MUTED)
        return text
    for name in ANTHROPIC_COUNTS:
        n = b.request_counts.get(name, 0)
        text.append(f"{name} {count(n)}  ", _OUTCOME_STYLE.get(name, "" if not n else "red"))
    text.append("\n")
    return text


def _head(d: BatchDetail) -> Text:
    b = d.row.batch
    text = Text()
    text.append(f"batch {b.id} ", "bold")
    text.append(b.remote_id or "(not sent)")
    text.append(f"  {b.queue}  {provider_label(b)}  {b.endpoint}  {b.model or ''}\n")
    text.append(b.state, styles.BATCH.get(b.state, ""))
    text.append(f" (raw {b.raw_status or '-'})  ")
    text.append(styles.progress_bar(d.row.progress, 20))
    text.append(f" {d.row.progress:.0%}  lines {batch_lines_text(b)}  ")
    eta = batch_eta_text(d.row)
    text.append(f"ETA {eta}  " if eta else "")
    text.append(batch_timing_text(d.row) + "\n")
    if b.provider == "anthropic":
        text.append(_anthropic_counts(b))
    text.append("files ", "bold")
    text.append(f"in {b.input_file_id or '-'}  out {b.output_file_id or '-'}  ")
    text.append(f"err {b.error_file_id or '-'}\n")
    text.append("items ", "bold")
    for outcome, n in sorted(d.outcomes.items()):
        text.append(f"{outcome} {count(n)}  ", _OUTCOME_STYLE.get(outcome, "red"))
    text.append(f"  showing: {d.outcome or 'all'} (o to change)", styles.MUTED)
    problem = batch_problem(d.row)
    if problem:
        text.append("\n")
        text.append(problem, styles.ALERT)
    return text
