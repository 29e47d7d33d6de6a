"""The QA pane: per judge and dimension averages, score distribution, worst jobs and the
jobs on which judges disagree; an empty state that says how to turn QA on."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from batchdash.core.qa_models import DISAGREEMENT_THRESHOLD, QASummary
from batchdash.tui import styles
from batchdash.tui.fmt import count

EMPTY = (
    "No QA scores yet.\n\n"
    "QA asks judge models to score finished jobs (accuracy, fluency, terminology,\n"
    "completeness, overall). Turn it on with\n\n"
    "    batchdash qa run --queue NAME --judges gpt-4o-mini\n\n"
    "or let workers sample as they go; scores appear here as they arrive."
)


class QAPane(VerticalScroll):
    """QA summary; redraws only when the summary changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: QASummary | None = None

    def compose(self) -> Any:
        yield Static(Text(EMPTY, styles.MUTED), id="qa-body")

    def show(self, summary: QASummary) -> None:
        """Render the summary (or the empty state)."""
        if summary == self._shown:
            return
        self._shown = summary
        body = self.query_one("#qa-body", Static)
        body.update(Text(EMPTY, styles.MUTED) if summary.empty else render_qa(summary))


def render_qa(qa: QASummary) -> RenderableType:
    """Stats per judge × dimension, distribution bars, worst and disputed jobs."""
    head = Text(f"{count(qa.results)} verdicts, {count(qa.errors)} judge errors", "bold")
    dims = sorted({s.dimension for s in qa.stats})
    judges = sorted({s.judge for s in qa.stats})
    means = {(s.judge, s.dimension): s for s in qa.stats}
    stats = Table(title="average per judge (min–max)", title_justify="left", box=None)
    stats.add_column("JUDGE", no_wrap=True)
    for dim in dims:
        stats.add_column(dim.upper(), justify="right", no_wrap=True)
    for judge in judges:
        cells = []
        for dim in dims:
            s = means.get((judge, dim))
            cells.append("-" if s is None else f"{s.mean:.2f} ({s.minimum:g}–{s.maximum:g})")
        stats.add_row(Text(judge), *cells)
    dist = Table(title="overall score distribution", title_justify="left", box=None)
    dist.add_column("SCORE", justify="right")
    dist.add_column("VERDICTS")
    top = max(qa.distribution.values(), default=1)
    for score in range(1, 11):
        n = qa.distribution.get(score, 0)
        dist.add_row(str(score), Text("█" * round(n / top * 30) + f" {n}", _score_style(score)))
    worst = Table(title="worst jobs", title_justify="left", box=None)
    for name in ("JOB", "KEY", "JUDGE", "OVERALL"):
        worst.add_column(name)
    for job_id, key, judge, overall in qa.worst:
        worst.add_row(
            str(job_id), Text(key), Text(judge), Text(f"{overall:g}", _score_style(overall))
        )
    parts: list[RenderableType] = [head, stats, Text(""), dist, Text(""), worst]
    if qa.disagreements:
        spread = Table(
            title=f"judges disagree (≥ {DISAGREEMENT_THRESHOLD:g} apart)",
            title_justify="left",
            box=None,
        )
        for name in ("JOB", "KEY", "LOW", "HIGH"):
            spread.add_column(name)
        for job_id, key, low, high in qa.disagreements:
            spread.add_row(str(job_id), Text(key), f"{low:g}", f"{high:g}")
        parts += [Text(""), spread]
    return Group(*parts)


def _score_style(score: float) -> str:
    return "red" if score < 5 else "yellow" if score < 7 else "green"
