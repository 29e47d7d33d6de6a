"""The filter input (`/`): qualifiers and free text, checked before the dialog closes."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from batchdash.core.filters import FilterError, parse_filter
from batchdash.core.models import JobFilter

HINT = (
    "status:failed queue:papers key:abc* batch:12 worker:ID id:1,2 provider:anthropic "
    "tag:nightly score<7 score>3 text"
)


class FilterScreen(ModalScreen[JobFilter | None]):
    """Dismissed with the parsed filter, or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel", id="filter-cancel")
    ]

    def __init__(self, current: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static(Text("Filter jobs (enter to apply, empty for all, esc to cancel)"))
            yield Input(value=self.current, placeholder=HINT, id="filter-input")
            yield Static(Text(HINT, "bright_black"), id="filter-error")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply a valid filter; show a bad one's error and stay open."""
        try:
            flt = parse_filter(event.value)
        except FilterError as exc:
            self.query_one("#filter-error", Static).update(Text(str(exc), "bold red"))
            return
        self.dismiss(flt)

    def action_dismiss_none(self) -> None:
        """Close without changing the filter."""
        self.dismiss(None)
