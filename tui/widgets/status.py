"""The status filter pane: statuses with live counts and their keys, queues with pause state
and, under a queue, its spend against its budget, its use of a rate limit, the jobs
waiting on it and how long they waited."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from batchdash.core.budget import budget_paused, queue_spend_text
from batchdash.core.models import JobFilter, JobStatus, QueueInfo
from batchdash.core.ratelimit import LimitStatus
from batchdash.core.snapshot import Overview
from batchdash.tui import styles
from batchdash.tui.fmt import count, duration, limit_brief, one_line
from batchdash.tui.widgets.quiet import update_if_changed

#: The number key that jumps to each status ("0" shows every status).
STATUS_KEYS: dict[str, str] = {str(i + 1): s.value for i, s in enumerate(JobStatus)}
#: Cells for a status or queue name ("cancelled" is the longest status).
NAME = 10


def _click(action: str) -> Style:
    """A style that runs `action` when its text is clicked."""
    return Style.from_meta({"@click": action})


class StatusPane(Static):
    """Counts per status (highlighting the one filtered on) and every queue; clicking a
    status or a queue filters by it (clicking the chosen queue again drops it).

    The pane is as wide as its widest count needs (see `width: auto` in the stylesheet), so
    a count of millions stays on its line instead of wrapping.
    """

    def on_mount(self) -> None:
        # The rows are clickable, not links: keep their colours, no underline.
        self.auto_links = False

    def show(
        self,
        head: Overview,
        queues: list[QueueInfo],
        flt: JobFilter,
        limits: list[LimitStatus] | None = None,
    ) -> None:
        """Render counts for the current filter (and each queue's rate limits)."""
        rows = [("0", "all", head.total)] + [
            (key, status, head.counts.get(status, 0)) for key, status in STATUS_KEYS.items()
        ]
        digits = max(len(count(n)) for n in [n for _, _, n in rows] + [q.total for q in queues])
        text = Text(no_wrap=True)
        text.append("STATUS\n", "bold")
        for key, status, n in rows:
            chosen = status in flt.statuses or (status == "all" and not flt.statuses)
            line = f"{key} {status:<{NAME}} {count(n):>{digits}}"
            action = f"app.status('{'' if status == 'all' else status}')"
            text.append(line, Style.parse("reverse" if chosen else "") + _click(action))
            text.stylize(styles.STATUS.get(status, ""), len(text) - len(line) + 2)
            text.append("\n")
        text.append("\nQUEUES\n", "bold")
        if not queues:
            text.append("none yet\n", styles.MUTED)
        for index, q in enumerate(queues):
            mark = "⏸ " if q.paused else "  "
            line = f"{mark}{one_line(q.name, NAME):<{NAME}} {count(q.total):>{digits}}"
            style = "yellow" if q.paused else ("reverse" if q.name in flt.queues else "")
            # By position: a queue's name is the user's text, never part of an action string.
            text.append(line, Style.parse(style) + _click(f"app.queue_filter({index})"))
            text.append("\n")
            if q.budget_usd is not None:  # its spend against the budget, and a budget pause
                held = budget_paused(q)
                note = f"  {'budget: ' if held else ''}{queue_spend_text(q)}\n"
                text.append(note, styles.ALERT if held else styles.MUTED)
            for limit in limits or ():
                if limit.queue == q.name:
                    # Jobs waiting on the limit in yellow, a rate lowered by a 429 in red.
                    style = (
                        "red" if limit.throttled else "yellow" if limit.waiting else styles.MUTED
                    )
                    text.append(f"  {one_line(limit_brief(limit), NAME + 1 + digits)}\n", style)
                    if limit.wait_max > 0:  # how long jobs waited on it (the last minute)
                        waited = f"waited ≤{duration(limit.wait_max)}"
                        text.append(f"  {one_line(waited, NAME + 1 + digits)}\n", styles.MUTED)
        update_if_changed(self, text)
