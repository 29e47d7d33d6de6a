"""Updating a Static only when what it shows changed, and laying out only when its size can.

`Static.update` lays the screen out again by default (a width:auto pane may change size)
and repaints; the dashboard's header, status pane and status line are handed the same text
on most refreshes, and text of the same lines and widths on most of the others (a count
that changed but kept its digits, a highlighted status), which needs a repaint, no layout.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def update_if_changed(widget: Static, text: Text) -> None:
    """`widget.update(text)` unless `text` is what this function last put there; laid out
    again only when its lines' count or widths changed."""
    old: Text | None = getattr(widget, "_quiet_text", None)
    if old == text:
        return
    widget._quiet_text = text  # type: ignore[attr-defined]
    widget.update(text, layout=old is None or _shape(old) != _shape(text))


def _shape(text: Text) -> list[int]:
    """The cell width of each line: what a size computed from the text depends on."""
    return [line.cell_len for line in text.split("\n", allow_blank=True)]
