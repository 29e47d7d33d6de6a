"""The overview header: jobs per state, throughput sparkline, ETA, tokens and cost."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from core.models import JobStatus
from core.snapshot import Overview, WorkerRow
from tui import styles
from tui.fmt import count, duration, money
from tui.fmt import eta as eta_text


class OverviewHeader(Horizontal):
    """Three lines at the top: counts and spend on the left, throughput on the right."""

    def compose(self) -> ComposeResult:
        yield Static(id="overview-counts")
        with Vertical(id="overview-rate"):
            yield Static(id="overview-rate-text")
            yield Sparkline([0.0], id="overview-spark")

    def show(self, head: Overview, workers: list[WorkerRow]) -> None:
        """Render the overview; the sparkline is only replaced when its data changed."""
        self.query_one("#overview-counts", Static).update(_counts(head, workers))
        eta = eta_text(head.eta_seconds)
        window = duration(head.bucket_seconds * len(head.throughput))
        self.query_one("#overview-rate-text", Static).update(
            Text.assemble(
                ("done ", "bold"),
                f"{head.rate_per_minute:.1f}/min",
                ("  ETA ", "bold"),
                eta,
                (f"  ({window})", styles.MUTED),
            )
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
    text.append("  tokens ", "bold")
    text.append(f"{count(head.input_tokens)} in / {count(head.output_tokens)} out")
    text.append("  cost ", "bold")
    text.append(money(head.cost))
    text.append("\nworkers ", "bold")
    health: dict[str, int] = {}
    for row in workers:
        health[row.health] = health.get(row.health, 0) + 1
    if not health:
        text.append("none", styles.MUTED)
    for name, n in sorted(health.items()):
        text.append(f"{n} {name}  ", styles.HEALTH.get(name, ""))
    return text
