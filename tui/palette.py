"""The command palette's own commands (ctrl+p): every dashboard action by name.

Textual's palette starts with its system commands (theme, quit, keys, screenshot); the
dashboard adds its actions, so a user who forgot a key finds it by typing what it does.
Writing actions are left out under `--read-only`, as their keys are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Protocol

from textual.app import SystemCommand

from batchdash.tui.actions import WRITE_ACTIONS
from batchdash.tui.keys import PANES
from batchdash.tui.widgets.status import STATUS_KEYS


class PaletteApp(Protocol):
    """What the commands need from the dashboard."""

    read_only: bool

    def run_action(self, action: str) -> Any:
        """Run an action string like `status('failed')` (Textual's own)."""

    def batch_choices(self) -> list[tuple[int, str]]:
        """(batch id, one-line description) of the batches shown in the batches pane."""


#: (action, title, help) of the actions on the highlighted or marked jobs.
JOB_ACTIONS = (
    ("retry", "Retry jobs", "Send the highlighted or marked failed/cancelled jobs back (r)"),
    ("cancel", "Cancel jobs", "Cancel the highlighted or marked jobs; asks first (c)"),
    ("resume", "Resume jobs", "Rescue jobs of dead workers and un-pause their queues (u)"),
    ("pause", "Pause/resume queue", "Pause the highlighted job's queue, or resume it (p)"),
    ("mark_all", "Mark all matching", "Mark every job the filter matches, on every page (a)"),
    ("cycle_order", "Sort jobs", "Sort by the next order: newest, updated, key, ... (s)"),
    ("filter", "Filter jobs", "Type a filter: status:failed queue:papers ... (/)"),
    ("refresh_now", "Refresh now", "Read the database and poll remote batches now (ctrl+r)"),
)


def commands(app: PaletteApp) -> Iterator[SystemCommand]:
    """The dashboard's commands, for `App.get_system_commands`."""

    def run(action: str) -> Callable[[], Any]:
        return partial(app.run_action, action)

    for action, title, help_text in JOB_ACTIONS:
        if not (app.read_only and action in WRITE_ACTIONS):
            yield SystemCommand(title, help_text, run(action))
    yield SystemCommand(
        "Show all statuses", "Every job, whatever its status (0)", run("status('')")
    )
    for key, status in STATUS_KEYS.items():
        yield SystemCommand(
            f"Only {status} jobs", f"Filter by status {status} ({key})", run(f"status('{status}')")
        )
    for key, pane, label in PANES:
        yield SystemCommand(
            f"{label} pane", f"Switch to the {label} pane ({key})", run(f"show_tab('{pane}')")
        )
    for batch_id, what in app.batch_choices():
        yield SystemCommand(
            f"Open batch {batch_id}", what, run(f"open_batch({batch_id})"), discover=False
        )
