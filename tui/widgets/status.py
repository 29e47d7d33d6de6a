"""The status filter pane: statuses with live counts and their keys, queues with pause state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.models import JobFilter, JobStatus, QueueInfo
from core.snapshot import Overview
from tui import styles
from tui.fmt import count, one_line

#: The number key that jumps to each status ("0" shows every status).
STATUS_KEYS: dict[str, str] = {str(i + 1): s.value for i, s in enumerate(JobStatus)}


class StatusPane(Static):
    """Counts per status (highlighting the one filtered on) and every queue."""

    def show(self, head: Overview, queues: list[QueueInfo], flt: JobFilter) -> None:
        """Render counts for the current filter."""
        width = max(14, self.size.width)
        text = Text()
        text.append("STATUS\n", "bold")
        rows = [("0", "all", head.total)] + [
            (key, status, head.counts.get(status, 0)) for key, status in STATUS_KEYS.items()
        ]
        for key, status, n in rows:
            chosen = status in flt.statuses or (status == "all" and not flt.statuses)
            style = "reverse" if chosen else ""
            line = f"{key} {status:<10}{count(n):>{width - 12}}"
            text.append(line, style)
            text.stylize(styles.STATUS.get(status, ""), len(text) - len(line) + 2)
            text.append("\n")
        text.append("\nQUEUES\n", "bold")
        if not queues:
            text.append("none yet\n", styles.MUTED)
        for q in queues:
            mark = "⏸ " if q.paused else "  "
            name = one_line(q.name, width - 8)
            line = f"{mark}{name:<{width - 8}}{count(q.total):>6}"
            text.append(line, "yellow" if q.paused else ("reverse" if q.name in flt.queues else ""))
            text.append("\n")
        self.update(text)
