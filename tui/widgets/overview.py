"""The overview header: jobs per state, spend, workers, local throughput sparkline and ETA."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from batchdash.core.models import JobStatus
from batchdash.core.snapshot import Overview, WorkerRow
from batchdash.tui import styles
from batchdash.tui.fmt import count, spend_text, stall_text
from batchdash.tui.once import eta_phrase, rate_phrase, window_phrase
from batchdash.tui.widgets.quiet import update_if_changed


class OverviewHeader(Horizontal):
    """Three lines at the top: counts, spend and workers on the left, throughput on the right.

    Tokens are left to `--once`, the JSON and the job detail: the header keeps its width.
    """

    def compose(self) -> ComposeResult:
        yield Static(id="overview-counts")
        with Vertical(id="overview-rate"):
            yield Static(id="overview-rate-text")
            yield Sparkline([0.0], id="overview-spark")

    def show(self, head: Overview, workers: list[WorkerRow]) -> None:
        """Render the overview; the sparkline is only replaced when its data changed."""
        update_if_changed(self.query_one("#overview-counts", Static), _counts(head, workers))
        eta = eta_phrase(head)
        update_if_changed(
            self.query_one("#overview-rate-text", Static),
            Text.assemble(
                (rate_phrase(head), "bold"),
                "  ",
                (eta, "yellow" if head.eta_seconds is None and head.stalled else ""),
                (f"  {window_phrase(head)}", styles.MUTED),
                no_wrap=True,
                overflow="ellipsis",
            ),
        )
        spark = self.query_one("#overview-spark", Sparkline)
        data = [float(n) for n in head.throughput]
        if list(spark.data or []) != data:
            spark.data = data


def _counts(head: Overview, workers: list[WorkerRow]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for status in JobStatus:
        n = head.counts.get(status, 0)
        text.append("●", styles.STATUS[status] if n else styles.MUTED)
        text.append(f"{count(n)} {status}  ")
        if status == JobStatus.PENDING and head.retrying:
            text.append(f"({count(head.retrying)} retrying)  ", "yellow")
    text.append("\n")
    text.append(f"{count(head.total)} jobs", "bold")
    text.append("  spend ", "bold")
    text.append(spend_text(head.work.cost, head.qa.cost))
    text.append("\nworkers ", "bold")
    health: dict[str, int] = {}
    for row in workers:
        health[row.health] = health.get(row.health, 0) + 1
    if not health:
        text.append("none  ", styles.MUTED)
    for name, n in sorted(health.items()):
        text.append(f"{n} {name}  ", styles.HEALTH.get(name, ""))
    if head.stalled:
        # Said beside the workers: no live one can claim these (or their queue is paused).
        text.append(f"· {stall_text(head.stalled, head.stall_reason, 'jobs')}", "yellow")
    return text
