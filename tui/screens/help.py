"""The help screen, built from the bindings active where `?` was pressed."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: The filter language in a few lines (the full rules: `core.filters`).
FILTER_HELP = Text.assemble(
    ("\nfilter (/)", "bold"),
    "  status:failed queue:papers key:abc* batch:12 worker:ID id:1,2 score<7 score>3 text\n"
    "  provider:anthropic  the work sent to Anthropic: lines of its batches and local jobs of\n"
    "                      the anthropic handler (provider:openai likewise)\n"
    "  tag:nightly         jobs carrying that tag (enqueue --tag, submit --tag)",
)


class HelpScreen(ModalScreen[None]):
    """Every key that works right now and what it does (hidden ones included)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="close-help")
    ]

    def __init__(self, bindings: dict[str, ActiveBinding], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys = bindings
        #: (key, what it does, where it is bound), one per binding.
        self.help_rows: list[tuple[str, str, str]] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._table())
            yield Static(FILTER_HELP, id="filter-help")

    def _table(self) -> Table:
        table = Table(title="batchdash keys", box=None, title_style="bold")
        table.add_column("KEY", style="bold cyan", no_wrap=True)
        table.add_column("ACTION")
        table.add_column("WHERE", style="bright_black")
        seen: set[tuple[str, str]] = set()
        for key, active in self._keys.items():
            binding = active.binding
            text = binding.description or binding.action
            if (text, binding.action) in seen:
                continue
            seen.add((text, binding.action))
            label = binding.key_display or self.app.get_key_display(binding) or key
            row = (label, text, type(active.node).__name__)
            self.help_rows.append(row)
            table.add_row(row[0], Text(row[1]), row[2])
        return table
