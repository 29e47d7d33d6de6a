"""Updating a Static only when what it shows changed.

`Static.update` always lays the screen out again (a width:auto pane may change size) and
repaints; the dashboard's header, status pane and status line are handed the same text on
most refreshes, so comparing first keeps a quiet refresh from repainting anything.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def update_if_changed(widget: Static, text: Text) -> None:
    """`widget.update(text)` unless `text` is what this function last put there."""
    if getattr(widget, "_quiet_text", None) == text:
        return
    widget._quiet_text = text  # type: ignore[attr-defined]
    widget.update(text)
