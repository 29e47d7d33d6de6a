"""The help screen: the keys active where `?` was pressed, then the filter language.

Keys come from the live bindings, so the help never lists a key that does nothing here;
the footer shows a subset of the same bindings with the same words.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

#: Where a binding works, by the class that holds it (the user never sees class names).
PLACES = {
    "JobTable": "jobs table",
    "BatchesTable": "batches table",
    "HeartbeatsTable": "workers table",
    "JobDetailPane": "job detail",
    "BatchDetailScreen": "batch detail",
    "QAPane": "QA pane",
}

#: The filter language (`core.filters`), each form with what it selects. Lines stay under
#: 76 cells so the help fits an 80-column terminal.
FILTER_FORMS = (
    ("status:failed,cancelled", "jobs in either status"),
    ("queue:papers", "one queue (repeat for more: queue:a queue:b)"),
    ("key:abc*", "keys matching a glob (* and ?)"),
    ("batch:12", "the lines of batch 12"),
    ("worker:host-1", "jobs that worker ran last"),
    ("id:4,5", "these jobs"),
    ("provider:anthropic", "work sent there: its batch lines + handler jobs"),
    ("tag:nightly", "jobs carrying that tag (enqueue --tag, submit --tag)"),
    ("score<7  score>3", "QA judge scores below / above"),
    ('timeout  "a: b"', "free text in keys and errors (quote a colon)"),
)
FILTER_EXAMPLES = ("status:failed queue:papers timeout", "provider:openai score<5")


class HelpScreen(ModalScreen[None]):
    """Every key that works right now and what it does (hidden ones included)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="close-help")
    ]

    def __init__(self, bindings: dict[str, ActiveBinding], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys = bindings
        #: (keys, what they do, where they work), one per action.
        self.help_rows: list[tuple[str, str, str]] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._table())
            yield Static(filter_help(), id="filter-help")

    def _table(self) -> Table:
        table = Table(title="batchdash keys", box=None, title_style="bold", expand=True)
        table.add_column("KEY", style="bold cyan", no_wrap=True)
        table.add_column("ACTION", ratio=1)
        table.add_column("WHERE", style="bright_black", no_wrap=True)
        # One row per action, every key for it on the row (`q ^q  Quit`).
        rows: dict[tuple[str, str], tuple[list[str], str]] = {}
        for key, active in self._keys.items():
            binding = active.binding
            if binding.action in SIDEWAYS and _fits(active.node):
                continue  # the tables fit their pane: nothing to move sideways to
            text = binding.description or binding.action
            label = binding.key_display or self.app.get_key_display(binding) or key
            labels, _ = rows.setdefault((text, binding.action), ([], _place(active.node)))
            if label not in labels:
                labels.append(label)
        # The dashboard's own keys (anywhere) first, then each pane's, in binding order.
        ordered = sorted(rows.items(), key=lambda row: row[1][1] != "anywhere")
        for (text, _), (labels, place) in ordered:
            self.help_rows.append((" ".join(labels), text, place))
            table.add_row(" ".join(labels), Text(text), place)
        return table


#: Textual's bindings that move a table or scroll view sideways.
SIDEWAYS = frozenset({"cursor_left", "cursor_right", "page_left", "page_right"})


def _fits(node: DOMNode) -> bool:
    """A row-cursor table, whose columns always fit its pane (it never scrolls sideways)."""
    return isinstance(node, DataTable) and node.cursor_type == "row"


def _place(node: DOMNode) -> str:
    """Where a binding of `node` works, in the user's words."""
    if isinstance(node, App) or type(node) is Screen:
        return "anywhere"
    return PLACES.get(type(node).__name__, "here")


def filter_help() -> Text:
    """The filter language with an example of every form."""
    text = Text.assemble(
        ("\nFILTER (/)", "bold"),
        "  qualifiers AND together; commas inside one mean OR\n",
    )
    for form, meaning in FILTER_FORMS:
        text.append(f"  {form:<24}", "cyan")
        text.append(f"{meaning}\n")
    text.append("  e.g. ", "bright_black")
    text.append("   ".join(FILTER_EXAMPLES), "cyan")
    return text
