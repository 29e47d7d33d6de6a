"""The batches pane: each remote batch with its provider (and named endpoint), a progress
bar, raw and normalized status, time to expiry (or how long it has been finalizing or
cancelling), its own ETA, errors and file ids."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from batchdash.core.snapshot import BatchRow
from batchdash.tui import styles
from batchdash.tui.fmt import one_line
from batchdash.tui.once import (
    batch_eta_text,
    batch_lines_text,
    batch_problem,
    batch_timing_text,
    provider_label,
)
from batchdash.tui.widgets.table import PlainCellsTable, Row, sync_rows

COLUMNS = (
    ("id", "ID", 4),
    ("provider", "PROVIDER", 9),
    ("remote", "REMOTE", 16),
    ("queue", "QUEUE", 13),
    ("state", "STATE", 10),
    ("raw", "RAW", 11),
    ("progress", "PROGRESS", 17),
    ("counts", "LINES", 22),
    ("eta", "ETA", 7),
    ("time", "TIME", 20),
    ("files", "FILES in/out/err", 18),
    ("error", "ERROR", 30),
)


class BatchesTable(PlainCellsTable):
    """Remote batches, active first; enter opens one, `c` cancels it, `R` resubmits failures."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.open_batch", "Batch detail", id="batch-details"),
        Binding("c", "app.cancel_batch", "Cancel batch", id="cancel-batch"),
        Binding("R", "app.resubmit_batch", "Resubmit failures", id="resubmit-batch"),
        Binding("right_square_bracket", "app.batch_page(1)", "Next page", id="batch-next-page"),
        Binding("left_square_bracket", "app.batch_page(-1)", "Previous page", id="batch-prev-page"),
    ]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, rows: list[BatchRow]) -> None:
        """Diff the batches into the table."""
        sync_rows(self, [batch_cells(row) for row in rows])

    def highlighted_id(self) -> int | None:
        """Local id of the batch under the cursor."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else int(row_key.value)


def batch_cells(row: BatchRow) -> Row:
    """One batch as table cells (untrusted text wrapped in Text)."""
    b = row.batch
    files = "/".join(_short(f) for f in (b.input_file_id, b.output_file_id, b.error_file_id))
    bar = Text(styles.progress_bar(row.progress, 11), styles.BATCH.get(b.state, ""))
    bar.append(f" {row.progress:4.0%}")
    return (
        str(b.id),
        (
            str(b.id),
            Text(provider_label(b)),
            Text(b.remote_id or "-"),
            Text(one_line(b.queue, 13)),
            Text(b.state, styles.BATCH.get(b.state, "")),
            Text(b.raw_status or "-"),
            bar,
            batch_lines_text(b),
            batch_eta_text(row),
            batch_timing_text(row),
            Text(files),
            Text(batch_problem(row), styles.ALERT),
        ),
    )


def _short(file_id: str | None) -> str:
    return "-" if not file_id else file_id[-4:]
