"""The queue pane: one page of jobs (key, queue, state, attempts, worker, age, duration, error).

A running job whose handler reports stages or progress shows them where a failed job shows
its error (`40% generate chunk 4/10`), and the column is then headed ERROR / STAGE.

Rows are keyed by job id and diffed on every refresh, so the cursor and marks stay put; a
refresh that changes no cell touches nothing, and a new page replaces the rows in one step.
The table never holds more than one page; paging, sorting and counting happen in SQL.

The columns fit the pane's width: the error column takes what is left, and a narrow pane
leaves out the least telling columns first, so the table never scrolls sideways.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from rich.text import Text
from textual.binding import Binding, BindingType

from batchdash.core.models import Job
from batchdash.core.snapshot import JobPage
from batchdash.tui import styles
from batchdash.tui.fmt import age, duration, one_line
from batchdash.tui.stage_text import progress_text
from batchdash.tui.widgets.table import PlainCellsTable, Row, highlighted_key, sync_rows


class Shown(NamedTuple):
    """What the table last showed, to redraw it when its columns change."""

    page: JobPage
    marks: set[int]
    all_marked: bool
    now: float


#: (column key, label, width); the error column's width is its least (it takes what is left).
COLUMNS = (
    ("id", "ID", 7),
    ("mark", "", 1),
    ("key", "KEY", 16),
    ("queue", "QUEUE", 10),
    ("state", "STATE", 9),
    ("try", "TRY", 3),
    ("worker", "WORKER", 12),
    ("age", "AGE", 4),
    ("dur", "DUR", 6),
    ("error", "ERROR", 16),
)
#: Columns left out, in this order, while the error column would get less than its least.
DROP_ORDER = ("worker", "dur", "age", "try", "queue")
#: Cells DataTable adds around every column (its default cell_padding on each side).
PADDING = 2

#: Column keys that sort the table when their header is clicked (see core.snapshot.ORDERS).
HEADER_ORDERS = {"id": "-id", "key": "key", "state": "status", "try": "attempts", "age": "-updated"}


class JobTable(PlainCellsTable):
    """Jobs of the current page; actions on the highlighted, marked or all matching jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.open_job", "Details", id="details"),
        Binding("space", "app.toggle_mark", "Mark", id="mark"),
        Binding("a", "app.mark_all", "Mark all matching", show=False, id="mark-all"),
        Binding("r", "app.retry", "Retry", id="retry"),
        Binding("c", "app.cancel", "Cancel", id="cancel"),
        Binding("u", "app.resume", "Resume", id="resume"),
        Binding("p", "app.pause", "Pause/resume queue", show=False, id="pause"),
        Binding("s", "app.cycle_order", "Sort", show=False, id="sort"),
        Binding("o", "app.page_result", "Result in $PAGER", show=False, id="page-result"),
        Binding("e", "app.edit_payload", "Payload in $EDITOR", show=False, id="edit-payload"),
        Binding("y", "app.copy_id('id')", "Copy job id", show=False, id="copy-id"),
        Binding("Y", "app.copy_id('key')", "Copy job key", show=False, id="copy-key"),
        Binding("right_square_bracket", "app.page(1)", "Next page", show=False, id="next-page"),
        Binding("left_square_bracket", "app.page(-1)", "Previous page", show=False, id="prev-page"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Shown | None = None
        self._fitted: list[tuple[str, str, int]] = []
        self._staged = False  # a shown job reports a stage or progress
        #: The cells last put in the table.
        self._rows: list[Row] = []

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Rebuild the columns for the pane's width (only when that changes them)."""
        fitted = fit_columns(self.scrollable_content_region.width, staged=self._staged)
        if fitted == self._fitted:
            return
        self._fitted = fitted
        cursor = highlighted_key(self)
        self.clear(columns=True)
        self._rows = []
        for key, label, width in fitted:
            self.add_column(label, key=key, width=width)
        if self._shown is not None:
            self.show(*self._shown)
        if cursor is not None and cursor in self.rows:
            self.move_cursor(row=self.get_row_index(cursor), animate=False)

    def show(self, page: JobPage, marks: set[int], all_marked: bool, now: float) -> None:
        """Diff this page into the table (nothing at all when its cells are the same)."""
        self._shown = Shown(page, marks, all_marked, now)
        staged = any(_stage_cell(job) for job in page.rows)
        if staged != self._staged:
            self._staged = staged
            self._fit()  # a new header for the last column; it shows the page again
            return
        columns = self._fitted
        rows = [_row(job, job.id in marks or all_marked, now, columns) for job in page.rows]
        if rows != self._rows:
            self._rows = rows
            sync_rows(self, rows)

    def highlighted_id(self) -> int | None:
        """Id of the job under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else int(row_key.value)


def fit_columns(width: int, *, staged: bool = False) -> list[tuple[str, str, int]]:
    """The columns for a table `width` cells wide: the error column gets the rest (headed
    ERROR / STAGE when `staged`: running jobs show their stage there)."""
    *fixed, (error_key, error_label, least) = COLUMNS
    if staged:
        error_label = "ERROR / STAGE"
    used = sum(w + PADDING for _, _, w in fixed)
    for key in DROP_ORDER:
        if width - used - PADDING >= least:
            break
        used -= next(w + PADDING for k, _, w in fixed if k == key)
        fixed = [column for column in fixed if column[0] != key]
    # Past the last column that may go, the error column shrinks instead.
    return [*fixed, (error_key, error_label, max(4, width - used - PADDING))]


def _row(job: Job, marked: bool, now: float, columns: list[tuple[str, str, int]]) -> Row:
    """The job's cells for `columns` (in their order); the error is cut to its column."""
    error_width = columns[-1][2]
    cells: dict[str, Any] = {
        "id": str(job.id),
        "mark": Text("✓", "bold magenta") if marked else "",
        "key": Text(one_line(job.key, 16)),
        "queue": Text(one_line(job.queue, 10)),
        "state": _state(job, now),
        "try": f"{job.attempts}/{job.max_attempts}",
        "worker": Text(one_line(job.worker_id or "-", 12)),
        "age": age(now - job.created_at),
        "dur": duration(job.duration) if job.status != "running" else _running(job, now),
        "error": _last_cell(job, error_width),
    }
    return str(job.id), [cells[key] for key, _, _ in columns]


def _stage_cell(job: Job) -> str:
    """A running job's stage and progress, '' when it reports none."""
    return progress_text(job) if job.status == "running" else ""


def _last_cell(job: Job, width: int) -> Text:
    """The error, or for a running job its stage and progress."""
    staged = _stage_cell(job)
    if staged:
        return Text(one_line(staged, width), "cyan")
    return Text(one_line(job.error or "", width), style="red" if job.error else "")


def _state(job: Job, now: float) -> Text:
    if job.status == "pending" and job.run_after > now:
        return Text("retrying", "yellow italic")
    if job.cancel_requested:
        return Text("cancelling", "yellow")
    return Text(job.status, styles.STATUS.get(job.status, ""))


def _running(job: Job, now: float) -> str:
    return "-" if job.started_at is None else duration(max(0.0, now - job.started_at))
