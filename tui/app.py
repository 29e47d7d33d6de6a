"""BatchDashApp: the live dashboard — its panes, key bindings and navigation.

What it shows comes from the refresh loop (`tui.refresh.RefreshingApp`: one long-lived
store, a snapshot per view read off the event loop, remote polling on its own cadence);
what it changes goes through the actions (`tui.actions.ActingApp`: retry, cancel, resume,
pause, batch cancel/resubmit, all refused under `--read-only`; `tui.outside.OutsideApp`:
$PAGER, $EDITOR, the clipboard). This module lays the panes out and moves between them:
tabs (J/B/S/W), j/k/g/G, status keys, the filter, sort orders, pages, detail, the palette.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.scrollbar import ScrollBar
from textual.widget import Widget
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from batchdash.core.db import open_store
from batchdash.core.db.ports import Page
from batchdash.core.filters import format_filter
from batchdash.core.models import JobFilter
from batchdash.core.snapshot import ORDERS, Snapshot
from batchdash.tui import keys, palette, themes
from batchdash.tui.outside import OutsideApp
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.screens.filter import FilterScreen
from batchdash.tui.screens.help import HelpScreen
from batchdash.tui.toasts import ToastingApp
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.detail import JobDetailPane
from batchdash.tui.widgets.heartbeats import HeartbeatsTable
from batchdash.tui.widgets.jobs import HEADER_ORDERS, JobTable
from batchdash.tui.widgets.overview import OverviewHeader
from batchdash.tui.widgets.qa import QAPane
from batchdash.tui.widgets.scrollbar import WholeCellScrollBarRender
from batchdash.tui.widgets.status import STATUS_KEYS, StatusPane
from batchdash.tui.widgets.statusline import StatusLine

# Every scrollbar of the dashboard, the way Textual documents replacing the renderer.
ScrollBar.renderer = WholeCellScrollBarRender

#: Screen classes by terminal width; the stylesheet sizes the header by them (batchdash.tcss).
BREAKPOINTS = [(0, "-narrow"), (110, "-normal")]


class BatchDashApp(ToastingApp, OutsideApp):
    """The dashboard. `clock` is injectable so tests and screenshots can freeze time;
    `bell=False` rings no bell on a notice."""

    CSS_PATH = "batchdash.tcss"
    TITLE = "batchdash"
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear", "Back", id="clear"),
        Binding("ctrl+r", "refresh_now", "Refresh now", show=False, id="refresh"),
        *keys.PANE_BINDINGS,
        *keys.MOVE_BINDINGS,
        Binding("0", "status('')", "All statuses", show=False, id="status-all"),
        *(
            Binding(key, f"status('{status}')", f"Only {status}", show=False, id=f"status-{status}")
            for key, status in STATUS_KEYS.items()
        ),
    ]

    #: The theme to start with (`--theme` or the config file's); None keeps Textual's.
    start_theme: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        themes.keep_alerts_without_colour(self)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield OverviewHeader(id="overview")
        with TabbedContent(initial="jobs", id="tabs"):
            with TabPane(keys.tab_label("jobs"), id="jobs"), Horizontal(id="jobs-view"):
                yield StatusPane(id="status-pane")
                with Vertical(id="jobs-main"):
                    yield JobTable(id="job-table")
                    yield JobDetailPane(id="job-detail")
            with TabPane(keys.tab_label("batches"), id="batches"):
                yield BatchesTable(id="batch-table")
            with TabPane(keys.tab_label("qa"), id="qa"):
                yield QAPane(id="qa-pane")
            with TabPane(keys.tab_label("workers"), id="workers"):
                yield HeartbeatsTable(id="worker-table")
        yield StatusLine(id="status-line")
        yield Footer(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        self.query_one(JobTable).focus()
        themes.keep_chosen_theme(self, self.start_theme)
        themes.keep_ansi_colours_on_16_colour_terminals(self)
        try:
            self.db = await open_store(self.where, readonly=self.read_only)
        except Exception as exc:  # a bad path or schema: say so and leave
            self.exit(return_code=2, message=f"batchdash: error: {exc}")
            return
        self._kick()
        self.follow_changes()
        self.watch_notices()
        if not self.read_only and self.poll_every > 0:
            self.set_interval(self.poll_every, self.action_poll_remote)
            self.call_later(self.action_poll_remote)

    async def on_unmount(self) -> None:
        if self.db is not None:
            await self.db.close()

    # ------------------------------------------------------------------ navigation

    def action_show_tab(self, tab: str) -> None:
        """Switch to a pane: jobs, batches, qa or workers."""
        self.query_one(TabbedContent).active = tab
        self._tab_changed()  # now, not when the tab's activation message arrives

    @on(TabbedContent.TabActivated)
    def _tab_changed(self) -> None:
        """Focus and fill the pane showing now. Not the activated message's pane: the first
        pane's activation can arrive after a key already switched to another."""
        if not self.is_running:
            return  # an activation that lands while the app shuts down: no widgets left
        tab = self.query_one(TabbedContent).active or "jobs"
        focus: dict[str, type[Widget]] = {
            "jobs": JobTable,
            "batches": BatchesTable,
            "workers": HeartbeatsTable,
        }
        if tab in focus:
            self.query_one(focus[tab]).focus()
        else:
            self.query_one(QAPane).focus()
        self.show_tab_table()
        with_qa = tab == "qa"
        if with_qa != self.view.with_qa:
            self.view = replace(self.view, with_qa=with_qa)
            self._kick()
        self._show_status()

    def action_status(self, status: str) -> None:
        """Show only jobs of one status ('' = every status)."""
        statuses = (status,) if status else ()
        self._set_filter(replace(self.view.flt, statuses=statuses))

    def action_queue_filter(self, index: int) -> None:
        """Show only the jobs of the sidebar's `index`th queue (again: every queue)."""
        queues = self.last.queues if self.last else []
        if 0 <= index < len(queues):
            picked = (queues[index].name,)
            chosen = () if self.view.flt.queues == picked else picked
            self._set_filter(replace(self.view.flt, queues=chosen))

    def action_filter(self) -> None:
        """Open the filter input."""

        def chosen(flt: JobFilter | None) -> None:
            if flt is not None:
                self._set_filter(flt)

        self.push_screen(FilterScreen(format_filter(self.view.flt)), chosen)

    def _set_filter(self, flt: JobFilter) -> None:
        # Marks belong to the view they were made in: kept, they would be invisible here
        # and an action would reach jobs this view does not show.
        self.marks.clear()
        self.all_marked = False
        self.view = replace(self.view, flt=flt, offset=0, page=None, page_number=None)
        self._queued_pages = 0
        self.action_show_tab("jobs")
        self._kick()

    def action_clear(self) -> None:
        """Back out one step: zoomed detail, then marks, then the filter."""
        main = self.query_one("#jobs-main")
        if main.has_class("zoomed"):
            main.remove_class("zoomed")
            self.query_one(JobTable).focus()
        elif self.marks or self.all_marked:
            self.marks.clear()
            self.all_marked = False
            self._redraw_marks()
        elif not self.view.flt.is_empty:
            self._set_filter(JobFilter())

    def action_cycle_order(self) -> None:
        """Sort by the next order (newest, recently updated, key, attempts, status)."""
        names = list(ORDERS)
        self._set_order(names[(names.index(self.view.order) + 1) % len(names)])

    def _set_order(self, order: str) -> None:
        self.view = replace(self.view, order=order, offset=0, page=None, page_number=None)
        self._queued_pages = 0
        self._kick()

    @on(DataTable.HeaderSelected, "#job-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        order = HEADER_ORDERS.get(str(event.column_key.value))
        if order is not None:
            self._set_order(order)

    #: Page keys pressed while the page of an earlier one was still being read (+ next).
    _queued_pages = 0
    #: The keyset anchor of the page on screen.
    _shown_page: Page | None = None

    def _apply(self, snap: Snapshot) -> None:
        super()._apply(snap)
        self._shown_page = self.view.page
        if self._queued_pages:
            step = 1 if self._queued_pages > 0 else -1
            self._queued_pages -= step
            self.action_page(step)

    def action_page(self, delta: int) -> None:
        """Next (1) or previous (-1) page of jobs: the rows after the last one shown, or
        before the first (keyset pages: a deep page costs what the first does)."""
        if self.view.page != self._shown_page:
            self._queued_pages += delta  # the next page starts from the one on its way
            return
        page = self.last.page if self.last else None
        if page is None or not page.rows or (page.at_end if delta > 0 else page.at_start):
            return
        anchor: Page | None = Page(page.rows[-1]) if delta > 0 else Page(page.rows[0], True)
        second = page.offset <= page.limit if page.offset_exact else page.number == 2
        if delta < 0 and second:
            anchor = None  # back to the first page, which follows new rows at the top
        # The page's number travels with it, so a deep page need not count rows in front;
        # a keyset page that lands before page 2 counts them instead (it is not the first).
        number = page.page_number
        turned = None if number is None or anchor is None or number + delta < 2 else number + delta
        self.view = replace(self.view, page=anchor, page_number=turned, offset=0)
        self._kick()

    def action_move(self, where: str) -> None:
        """j/k/g/G: move in the focused table; j/k at the edge of a jobs page turn the page."""
        widget = self.focused
        if widget is None:
            return
        if isinstance(widget, JobTable) and keys.at_edge(widget, where):
            before = self.view.page
            self.action_page(1 if where == "down" else -1)
            if self.view.page != before:
                # Land where reading on goes: the next page's first row, the previous one's
                # last (a full page, unlike a short last page: set again once it shows).
                widget.move_cursor(row=0 if where == "down" else widget.row_count - 1)
                if where == "up":
                    self.run_worker(self._land_on_last_row(widget), group="land")
            return
        keys.move(widget, where)

    async def _land_on_last_row(self, table: JobTable) -> None:
        await self.wait_for_snapshot()
        table.move_cursor(row=table.row_count - 1)

    def action_open_job(self) -> None:
        """Zoom the job detail pane to the whole tab (escape goes back)."""
        self.query_one("#jobs-main").add_class("zoomed")
        self.query_one(JobDetailPane).focus()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: Textual's commands (theme, quit, ...) and the dashboard's."""
        yield from super().get_system_commands(screen)
        yield from palette.commands(self)

    def batch_choices(self) -> list[tuple[int, str]]:
        """(id, description) of the batches the batches pane shows, for the palette."""
        rows = self.last.batches if self.last else []
        return [
            (r.batch.id, f"{r.batch.queue} · {r.batch.state} · {r.batch.endpoint}") for r in rows
        ]

    def action_help(self) -> None:
        """Show every key that works here, from the live bindings."""
        self.push_screen(HelpScreen(self.screen.active_bindings))

    def action_open_batch(self, batch_id: int | None = None) -> None:
        """Open a batch's detail screen (default: the highlighted batch)."""
        batch_id = batch_id or self.query_one(BatchesTable).highlighted_id()
        if batch_id is None:
            return
        self.view = replace(self.view, batch_id=batch_id, batch_outcome=None)
        self.push_screen(BatchDetailScreen(batch_id), lambda _: self._batch_closed())
        self._kick()

    def show_batch_outcome(self, outcome: str | None) -> None:
        """Show the open batch's items of one outcome (None = all)."""
        self.view = replace(self.view, batch_outcome=outcome)
        self._kick()

    def _batch_closed(self) -> None:
        self.view = replace(self.view, batch_id=None, batch_outcome=None)
        self._kick()

    def action_batch_page(self, delta: int) -> None:
        """Next (1) or previous (-1) page of batches."""
        total = self.last.batch_total if self.last else 0
        offset = max(0, self.view.batch_offset + delta * self.view.batch_limit)
        if offset != self.view.batch_offset and (offset < total or offset == 0):
            self.view = replace(self.view, batch_offset=offset)
            self._kick()
