"""The heartbeats pane: each worker's state, heartbeat age coloured by its own interval
(ok, late, stale, dead), current jobs, done/failed counts, host, pid and its note (such
as "loop blocked 12s by job 42")."""

from __future__ import annotations

from rich.text import Text

from batchdash.core.models import WorkerState
from batchdash.core.snapshot import WorkerRow
from batchdash.tui import styles
from batchdash.tui.fmt import age, count, one_line
from batchdash.tui.widgets.table import PlainCellsTable, Row, sync_rows

COLUMNS = (
    ("id", "WORKER", 20),
    ("state", "STATE", 9),
    ("health", "HEALTH", 8),
    ("beat", "HEARTBEAT", 9),
    ("every", "EVERY", 6),
    ("jobs", "CURRENT JOBS", 18),
    ("done", "DONE", 7),
    ("failed", "FAILED", 6),
    ("host", "HOST", 12),
    ("pid", "PID", 7),
    ("queues", "QUEUES", 12),
    ("note", "NOTE", 32),
)


#: States of a worker that is running (its note describes it now, not its past).
LIVE = frozenset({WorkerState.IDLE, WorkerState.BUSY, WorkerState.DRAINING})


class HeartbeatsTable(PlainCellsTable):
    """Workers, latest heartbeat first."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, rows: list[WorkerRow]) -> None:
        """Diff the workers into the table."""
        sync_rows(self, [_cells(row) for row in rows])


def _cells(row: WorkerRow) -> Row:
    w = row.worker
    colour = styles.HEALTH.get(row.health, "")
    # A live worker's note (its loop is blocked) matters more than a fresh heartbeat.
    health = Text("blocked", "bold red") if w.note and w.state in LIVE else Text(row.health, colour)
    return (
        w.id,
        (
            Text(w.id),
            Text(w.state),
            health,
            Text(age(row.age), colour),
            f"{w.heartbeat_interval:g}s",
            Text(one_line(",".join(map(str, w.current_jobs)) or "-", 18)),
            count(w.done),
            Text(count(w.failed), "red" if w.failed else ""),
            Text(w.host),
            str(w.pid),
            Text(",".join(w.queues) or "all"),
            Text(one_line(w.note or "", 32), "bold red"),
        ),
    )
