"""The queue pane: one page of jobs (key, queue, state, attempts, worker, age, duration, error).

Rows are keyed by job id and diffed on every refresh, so the cursor and marks stay put. The
table never holds more than one page; paging, sorting and counting happen in SQL.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from core.models import Job
from core.snapshot import JobPage
from tui import styles
from tui.fmt import age, duration, one_line
from tui.widgets.table import Row, sync_rows

#: (column key, label, width); the error column takes what is left.
COLUMNS = (
    ("id", "ID", 7),
    ("mark", "", 1),
    ("key", "KEY", 16),
    ("queue", "QUEUE", 10),
    ("state", "STATE", 9),
    ("try", "TRY", 3),
    ("worker", "WORKER", 12),
    ("age", "AGE", 3),
    ("dur", "DUR", 6),
    ("error", "ERROR", 60),
)

#: Column keys that sort the table when their header is clicked (see core.snapshot.ORDERS).
HEADER_ORDERS = {"id": "-id", "key": "key", "state": "status", "try": "attempts", "age": "-updated"}


class JobTable(DataTable[Any]):
    """Jobs of the current page; actions on the highlighted, marked or all matching jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.open_job", "Details", id="details"),
        Binding("space", "app.toggle_mark", "Mark", id="mark"),
        Binding("a", "app.mark_all", "Mark all matching", id="mark-all"),
        Binding("r", "app.retry", "Retry", id="retry"),
        Binding("c", "app.cancel", "Cancel", id="cancel"),
        Binding("u", "app.resume", "Resume", id="resume"),
        Binding("p", "app.pause", "Pause/resume queue", id="pause"),
        Binding("o", "app.cycle_order", "Sort", id="sort"),
        Binding("right_square_bracket", "app.page(1)", "Next page", id="next-page"),
        Binding("left_square_bracket", "app.page(-1)", "Previous page", id="prev-page"),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, page: JobPage, marks: set[int], all_marked: bool, now: float) -> None:
        """Diff this page into the table."""
        sync_rows(self, [_row(job, job.id in marks or all_marked, now) for job in page.rows])

    def highlighted_id(self) -> int | None:
        """Id of the job under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else int(row_key.value)


def _row(job: Job, marked: bool, now: float) -> Row:
    error = Text(one_line(job.error or "", 120), style="red" if job.error else "")
    return (
        str(job.id),
        (
            str(job.id),
            Text("✓", "bold magenta") if marked else "",
            Text(one_line(job.key, 16)),
            Text(one_line(job.queue, 10)),
            _state(job, now),
            f"{job.attempts}/{job.max_attempts}",
            Text(one_line(job.worker_id or "-", 12)),
            age(now - job.created_at),
            duration(job.duration) if job.status != "running" else _running(job, now),
            error,
        ),
    )


def _state(job: Job, now: float) -> Text:
    if job.status == "pending" and job.run_after > now:
        return Text("retrying", "yellow italic")
    if job.cancel_requested:
        return Text("cancelling", "yellow")
    return Text(job.status, styles.STATUS.get(job.status, ""))


def _running(job: Job, now: float) -> str:
    return "-" if job.started_at is None else duration(max(0.0, now - job.started_at))
