"""Terminal-convention keys shared by every pane: vim-style moves and the pane keys.

`j`/`k`/`g`/`G` move in whatever table (or scrolling pane) has focus, like k9s, lazygit
and less. That takes `j` from the jobs pane, so the panes move to capitals: `J`obs,
`B`atches, `S`cores (QA), `W`orkers (the number row stays the status filter).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable

#: The pane keys, in tab order: (key, pane id, tab label).
PANES = (
    ("J", "jobs", "Jobs"),
    ("B", "batches", "Batches"),
    ("S", "qa", "QA"),
    ("W", "workers", "Workers"),
)

#: Pane switching; the tab titles show these keys (`Jobs (J)`), the footer has no room.
PANE_BINDINGS = [
    Binding(key, f"show_tab('{pane}')", f"{label} pane", show=False, id=f"tab-{pane}")
    for key, pane, label in PANES
]

#: Vim-style moves; hidden from the footer (the arrows do the same), listed in the help.
MOVE_BINDINGS = [
    Binding("j", "move('down')", "Down (next page at the bottom)", show=False, id="move-down"),
    Binding("k", "move('up')", "Up (previous page at the top)", show=False, id="move-up"),
    Binding("g", "move('top')", "First row of the page", show=False, id="move-top"),
    Binding("G", "move('bottom')", "Last row of the page", show=False, id="move-bottom"),
]

#: Per move: the action of a table, then that of any other scrolling widget.
_MOVES = {
    "down": ("cursor_down", "scroll_down"),
    "up": ("cursor_up", "scroll_up"),
    "top": ("scroll_top", "scroll_home"),
    "bottom": ("scroll_bottom", "scroll_end"),
}


def tab_label(pane: str) -> str:
    """A tab's title with its key: `Jobs (J)`."""
    key, _, label = next(p for p in PANES if p[1] == pane)
    return f"{label} ({key})"


def move(widget: Widget, where: str) -> None:
    """Move `widget`'s cursor (a table) or scroll it (anything else) down, up, top or bottom."""
    table_action, scroll_action = _MOVES[where]
    action = table_action if isinstance(widget, DataTable) else scroll_action
    method = getattr(widget, f"action_{action}", None)
    if method is not None:
        method()


def at_edge(table: DataTable[object], where: str) -> bool:
    """Whether `where` would leave the page: down on the last row, up on the first."""
    if not table.row_count:
        return False
    last = table.row_count - 1
    return (where == "down" and table.cursor_row >= last) or (
        where == "up" and table.cursor_row <= 0
    )
