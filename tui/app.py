"""BatchDashApp: the live dashboard — panes, key bindings, the refresh loop and actions.

Refresh loop: one long-lived store (`core.db.open_store`, its own database thread). A worker
reads a whole `core.snapshot.Snapshot` for the current view in one hop to the connection's
thread (a few indexed queries and one page of rows), posts it as a message, and the handler
applies a keyed diff to the panes inside `batch_update()`, then re-arms a timer, so fetches
never overlap and input never waits on the database. Remote batches are polled through
`core.sync.run_cycle` on their own slower cadence. Failures of either are shown in the
status line; the loop carries on.

Actions (retry, cancel, resume, pause, batch cancel/resubmit) call core functions, never
SQL, and refresh the view. `--read-only` hides them and refuses them.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.scrollbar import ScrollBar
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Footer, TabbedContent, TabPane

from batchdash.core import batches, queue, snapshot
from batchdash.core.db import open_store
from batchdash.core.db.ports import Store
from batchdash.core.filters import format_filter
from batchdash.core.models import JobFilter
from batchdash.core.snapshot import ORDERS, Snapshot, View
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.screens.confirm import ConfirmScreen
from batchdash.tui.screens.filter import FilterScreen
from batchdash.tui.screens.help import HelpScreen
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.detail import JobDetailPane
from batchdash.tui.widgets.heartbeats import HeartbeatsTable
from batchdash.tui.widgets.jobs import HEADER_ORDERS, JobTable
from batchdash.tui.widgets.overview import OverviewHeader
from batchdash.tui.widgets.qa import QAPane
from batchdash.tui.widgets.scrollbar import WholeCellScrollBarRender
from batchdash.tui.widgets.status import STATUS_KEYS, StatusPane
from batchdash.tui.widgets.statusline import StatusLine

#: Actions that change something; `--read-only` hides and refuses them.
WRITE_ACTIONS = frozenset(
    {
        "retry",
        "cancel",
        "resume",
        "pause",
        "toggle_mark",
        "mark_all",
        "cancel_batch",
        "resubmit_batch",
    }
)

# Every scrollbar of the dashboard, the way Textual documents replacing the renderer.
ScrollBar.renderer = WholeCellScrollBarRender

#: Screen classes by terminal width; the stylesheet sizes the header by them (batchdash.tcss).
BREAKPOINTS = [(0, "-narrow"), (110, "-normal")]

#: Jobs per page of the queue pane.
PAGE_SIZE = 100
#: Batches per page of the batches pane.
BATCH_PAGE_SIZE = 50
#: After the cursor moves, wait this long for it to settle before reading the new detail.
SELECT_DEBOUNCE = 0.08


@dataclass(frozen=True, slots=True)
class Target:
    """The jobs an action applies to, how many, and how to name them in a question.

    `unseen` counts the targeted jobs that are not on the screen; an action on any of them
    always asks first, and `what` says how many and which.
    """

    flt: JobFilter
    count: int
    what: str
    unseen: int = 0

    @property
    def ask(self) -> bool:
        """Whether a retry or resume should ask before acting (bulk or partly unseen)."""
        return self.count > 1 or self.unseen > 0


class BatchDashApp(App[None]):
    """The dashboard. `clock` is injectable so tests and screenshots can freeze time."""

    CSS_PATH = "batchdash.tcss"
    TITLE = "batchdash"
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear", "Back", id="clear"),
        Binding("ctrl+r", "refresh_now", "Refresh now", show=False, id="refresh"),
        Binding("j", "show_tab('jobs')", "Jobs", show=False, id="tab-jobs"),
        Binding("b", "show_tab('batches')", "Batches", show=False, id="tab-batches"),
        Binding("s", "show_tab('qa')", "QA scores", show=False, id="tab-qa"),
        Binding("w", "show_tab('workers')", "Workers", show=False, id="tab-workers"),
        Binding("0", "status('')", "All statuses", show=False, id="status-all"),
        *(
            Binding(key, f"status('{status}')", f"Only {status}", show=False, id=f"status-{status}")
            for key, status in STATUS_KEYS.items()
        ),
    ]

    class SnapshotReady(Message):
        """A snapshot was read for `view` (fetch number `seq`)."""

        def __init__(self, seq: int, view: View, snap: Snapshot, seconds: float) -> None:
            super().__init__()
            self.seq = seq
            self.view = view
            self.snap = snap
            self.seconds = seconds

    class RefreshFailed(Message):
        """Reading a snapshot failed; the loop goes on."""

        def __init__(self, seq: int, error: str) -> None:
            super().__init__()
            self.seq = seq
            self.error = error

    def __init__(
        self,
        db_path: Path,
        *,
        refresh: float = 1.0,
        poll_every: float = 30.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.refresh_every = refresh
        self.poll_every = poll_every
        self.read_only = read_only
        self.clock = clock
        self.db: Store | None = None
        self.view = View(limit=PAGE_SIZE, batch_limit=BATCH_PAGE_SIZE)
        #: What the last action left undone (remote jobs `r` cannot retry), shown until the next.
        self.action_note = ""
        self.last: Snapshot | None = None
        self.marks: dict[int, str] = {}
        self.all_marked = False
        self.refresh_error: str | None = None
        self.poll_error: str | None = None
        #: (seconds reading the last snapshot, seconds applying it), for the benchmark.
        self.cycle_seconds: tuple[float, float] = (0.0, 0.0)
        self._seq = 0
        self._fetching = False
        self._again = False
        self._polling = False
        self._timer: Timer | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield OverviewHeader(id="overview")
        with TabbedContent(initial="jobs", id="tabs"):
            with TabPane("Jobs (j)", id="jobs"), Horizontal(id="jobs-view"):
                yield StatusPane(id="status-pane")
                with Vertical(id="jobs-main"):
                    yield JobTable(id="job-table")
                    yield JobDetailPane(id="job-detail")
            with TabPane("Batches (b)", id="batches"):
                yield BatchesTable(id="batch-table")
            with TabPane("QA (s)", id="qa"):
                yield QAPane(id="qa-pane")
            with TabPane("Workers (w)", id="workers"):
                yield HeartbeatsTable(id="worker-table")
        yield StatusLine(id="status-line")
        yield Footer(compact=True, show_command_palette=False)

    async def on_mount(self) -> None:
        self.query_one(JobTable).focus()
        try:
            self.db = await open_store(self.db_path, readonly=self.read_only)
        except Exception as exc:  # a bad path or schema: say so and leave
            self.exit(return_code=2, message=f"batchdash: error: {exc}")
            return
        self._kick()
        if not self.read_only and self.poll_every > 0:
            self.set_interval(self.poll_every, self.action_poll_remote)
            self.call_later(self.action_poll_remote)

    async def on_unmount(self) -> None:
        if self.db is not None:
            await self.db.close()

    # ------------------------------------------------------------------ refresh loop

    def _kick(self, delay: float = 0.0) -> None:
        """Refresh after `delay` (or right after the fetch in flight, if any)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if delay > 0:
            self._timer = self.set_timer(delay, self._kick)
            return
        if self.db is None:
            return
        if self._fetching:
            self._again = True
            return
        self._fetching = True
        self._again = False
        self._seq += 1
        self.run_worker(
            self._fetch(self._seq, self.view, self.clock()),
            group="refresh",
            exit_on_error=False,
        )

    async def _fetch(self, seq: int, view: View, now: float) -> None:
        """Read a snapshot on the store's thread; never touches widgets."""
        assert self.db is not None
        start = time.perf_counter()
        try:
            snap = await self.db.read(partial(snapshot.snapshot, view=view, now=now))
        except Exception as exc:  # shown in the status line; the loop goes on
            self.post_message(self.RefreshFailed(seq, f"refresh failed: {exc}"))
            return
        self.post_message(self.SnapshotReady(seq, view, snap, time.perf_counter() - start))

    def on_batch_dash_app_snapshot_ready(self, message: SnapshotReady) -> None:
        """Apply a snapshot on the main thread, then re-arm the timer."""
        self._fetching = False
        start = time.perf_counter()
        if message.view == self.view:
            self.refresh_error = None
            with self.batch_update():
                self._apply(message.snap)
        else:
            self._again = True  # the view changed while reading: read it again
        self.cycle_seconds = (message.seconds, time.perf_counter() - start)
        self._done(message.seq)

    def on_batch_dash_app_refresh_failed(self, message: RefreshFailed) -> None:
        """Show the error and keep refreshing."""
        self._fetching = False
        self.refresh_error = message.error
        self._show_status()
        self._done(message.seq)

    def _done(self, seq: int) -> None:
        if not self._again:
            for need, future in list(self._waiters):
                if need <= seq and not future.done():
                    future.set_result(None)
            self._waiters = [(n, f) for n, f in self._waiters if not f.done()]
        if self._again:
            self._kick()
        elif self._timer is None:
            self._timer = self.set_timer(self.refresh_every, self._kick)

    async def wait_for_snapshot(self) -> None:
        """Refresh now and return once a snapshot read after this call is applied."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._seq + 1, future))
        self._kick()
        await future

    def _apply(self, snap: Snapshot) -> None:
        self.last = snap
        if not self.screen_stack:
            return  # a read that lands while the app shuts down has nothing to draw on
        if isinstance(self.screen, BatchDetailScreen):
            self.screen.show(snap.batch, snap.now)
        if isinstance(self.screen, ModalScreen | BatchDetailScreen):
            return  # keep reading, but leave the panes alone under a dialog
        self.query_one(OverviewHeader).show(snap.overview, snap.workers)
        self.query_one(StatusPane).show(snap.overview, snap.queues, self.view.flt)
        table = self.query_one(JobTable)
        table.show(snap.page, set(self.marks), self.all_marked, snap.now)
        self.query_one(JobDetailPane).show(snap.detail, snap.now)
        self.query_one(BatchesTable).show(snap.batches)
        self.query_one(HeartbeatsTable).show(snap.workers)
        if snap.qa is not None:
            self.query_one(QAPane).show(snap.qa)
        self._show_status()
        self._follow_cursor()

    def _show_status(self) -> None:
        self.query_one(StatusLine).show(
            self.last.page if self.last else None,
            self.view.flt,
            marks=len(self.marks),
            unseen=self._marked_target().unseen if self.marks else 0,
            all_marked=self.all_marked,
            refreshed_at=self.last.now if self.last else None,
            error=self.refresh_error or self.poll_error,
            read_only=self.read_only,
            batch_span=self._batch_span(),
            note=self.action_note,
        )

    def _batch_span(self) -> tuple[int, int, int] | None:
        """(offset, shown, total) of the batches pane while it is the one showing."""
        if self.last is None or self.query_one(TabbedContent).active != "batches":
            return None
        return (self.view.batch_offset, len(self.last.batches), self.last.batch_total)

    def action_batch_page(self, delta: int) -> None:
        """Next (1) or previous (-1) page of batches."""
        total = self.last.batch_total if self.last else 0
        offset = max(0, self.view.batch_offset + delta * self.view.batch_limit)
        if offset != self.view.batch_offset and (offset < total or offset == 0):
            self.view = replace(self.view, batch_offset=offset)
            self._kick()

    def _follow_cursor(self) -> None:
        """Point the detail pane at the highlighted job (after the cursor settles)."""
        job_id = self.query_one(JobTable).highlighted_id()
        if job_id != self.view.job_id and job_id is not None:
            self.view = replace(self.view, job_id=job_id)
            self._kick(SELECT_DEBOUNCE)

    @on(DataTable.RowHighlighted, "#job-table")
    def _job_highlighted(self) -> None:
        self._follow_cursor()

    def action_refresh_now(self) -> None:
        """Read the store now, and poll remote batches now."""
        self._kick()
        self.action_poll_remote()

    # ------------------------------------------------------------------ remote polling

    def action_poll_remote(self) -> None:
        """One `core.sync` cycle in the background (skipped if one is running)."""
        if self._polling or self.db is None or self.read_only:
            return
        self._polling = True
        self.run_worker(self._poll(), group="poll", exit_on_error=False)

    async def _poll(self) -> None:
        assert self.db is not None
        try:
            # Imported off the event loop: core.sync pulls in openai (~0.7 s).
            sync = await _import("batchdash.core.sync")
            report = await sync.run_cycle(self.db, remote=True)
            errors = list(getattr(report, "errors", []))
            self.poll_error = f"poll: {errors[0]}" if errors else None
        except Exception as exc:  # a provider outage is shown, never fatal
            self.poll_error = f"poll failed: {exc}"
        finally:
            self._polling = False
        self._kick()

    # ------------------------------------------------------------------ navigation

    def action_show_tab(self, tab: str) -> None:
        """Switch to a pane: jobs, batches, qa or workers."""
        self.query_one(TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or "jobs"
        focus: dict[str, type[Widget]] = {
            "jobs": JobTable,
            "batches": BatchesTable,
            "workers": HeartbeatsTable,
        }
        if tab in focus:
            self.query_one(focus[tab]).focus()
        else:
            self.query_one(QAPane).focus()
        with_qa = tab == "qa"
        if with_qa != self.view.with_qa:
            self.view = replace(self.view, with_qa=with_qa)
            self._kick()
        self._show_status()

    def action_status(self, status: str) -> None:
        """Show only jobs of one status ('' = every status)."""
        statuses = (status,) if status else ()
        self._set_filter(replace(self.view.flt, statuses=statuses))

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
        self.view = replace(self.view, flt=flt, offset=0)
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
        self.view = replace(self.view, order=order, offset=0)
        self._kick()

    @on(DataTable.HeaderSelected, "#job-table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        order = HEADER_ORDERS.get(str(event.column_key.value))
        if order is not None:
            self._set_order(order)

    def action_page(self, delta: int) -> None:
        """Next (1) or previous (-1) page of jobs."""
        offset = max(0, self.view.offset + delta * self.view.limit)
        page = self.last.page if self.last else None
        if page is not None and page.exact and offset >= page.matching:
            return
        if offset != self.view.offset:
            self.view = replace(self.view, offset=offset)
            self._kick()

    def action_open_job(self) -> None:
        """Zoom the job detail pane to the whole tab (escape goes back)."""
        self.query_one("#jobs-main").add_class("zoomed")
        self.query_one(JobDetailPane).focus()

    def action_help(self) -> None:
        """Show every key that works here, from the live bindings."""
        self.push_screen(HelpScreen(self.screen.active_bindings))

    def action_open_batch(self) -> None:
        """Open the highlighted batch's detail screen."""
        batch_id = self.query_one(BatchesTable).highlighted_id()
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

    # ------------------------------------------------------------------ marks

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide (and so disable) every writing action in read-only mode."""
        return not (self.read_only and action in WRITE_ACTIONS)

    def action_toggle_mark(self) -> None:
        """Mark or unmark the highlighted job and move down."""
        if self._refused():
            return
        table = self.query_one(JobTable)
        job_id = table.highlighted_id()
        if job_id is None:
            return
        self.all_marked = False
        if self.marks.pop(job_id, None) is None:
            self.marks[job_id] = self._queue_of(job_id) or ""
        self._redraw_marks()
        table.action_cursor_down()

    def action_mark_all(self) -> None:
        """Mark (or unmark) every job matching the filter, on every page."""
        if self._refused():
            return
        self.all_marked = not self.all_marked
        self.marks.clear()
        self._redraw_marks()

    def _redraw_marks(self) -> None:
        if self.last is not None:
            with self.batch_update():
                self.query_one(JobTable).show(
                    self.last.page, set(self.marks), self.all_marked, self.last.now
                )
                self._show_status()

    def _queue_of(self, job_id: int) -> str | None:
        rows = self.last.page.rows if self.last else []
        return next((job.queue for job in rows if job.id == job_id), None)

    # ------------------------------------------------------------------ job actions

    def _refused(self) -> bool:
        if self.read_only:
            self.notify("read-only: actions are disabled", severity="warning")
        return self.read_only

    def _target(self) -> Target | None:
        """Marked jobs, else every job matching the filter when marked so, else the cursor."""
        page = self.last.page if self.last else None
        if self.all_marked and page is not None:
            what = f"all {page.matching_text} jobs matching the filter"
            return Target(self.view.flt, page.matching, what)
        if self.marks:
            return self._marked_target()
        job_id = self.query_one(JobTable).highlighted_id()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return None
        return Target(JobFilter(ids=(job_id,)), 1, f"job #{job_id}")

    def _marked_target(self) -> Target:
        """The marked jobs, saying how many of them are not on this page and which."""
        ids = tuple(sorted(self.marks))
        shown = {job.id for job in self.last.page.rows} if self.last else set()
        unseen = [i for i in ids if i not in shown]
        what = f"{len(ids)} marked job{'s' if len(ids) > 1 else ''}"
        if unseen:
            listed = ", ".join(f"#{i}" for i in unseen[:5]) + (", …" if len(unseen) > 5 else "")
            what += f" ({len(unseen)} not on this page: {listed})"
        return Target(JobFilter(ids=ids), len(ids), what, len(unseen))

    async def action_retry(self) -> None:
        """Send failed/cancelled jobs back to pending (bulk asks first)."""
        target = None if self._refused() else self._target()
        if target is None:
            return
        db = self._store()

        async def run() -> str:
            n = await queue.retry(db, target.flt)
            # Remote lines run again only in a child batch: say which one, like the CLI.
            remote = await queue.remote_retries(db, target.flt)
            self.action_note = "; ".join(f"{r.advice()} or press R on it (b)" for r in remote)
            done = f"retried {n} of {target.what}"
            return f"{done}; {self.action_note}" if remote else done

        self._act(run, f"Retry {target.what}?" if target.ask else None)

    async def action_cancel(self) -> None:
        """Cancel pending jobs now and running ones at their next heartbeat (asks first)."""
        target = None if self._refused() else self._target()
        if target is None:
            return
        db = self._store()

        async def run() -> str:
            done, flagged = await queue.cancel(db, target.flt)
            return f"cancelled {done}, asked {flagged} running to stop ({target.what})"

        self._act(run, f"Cancel {target.what}? Running jobs stop at their next heartbeat.")

    async def action_resume(self) -> None:
        """Rescue jobs of dead workers and un-pause the jobs' queues."""
        target = None if self._refused() else self._target()
        if target is None:
            return
        flt = target.flt
        if not self.all_marked:
            picked = {self._queue_of(i) or self.marks.get(i) for i in flt.ids}
            flt = replace(flt, queues=tuple(sorted(q for q in picked if q)))
        db = self._store()

        async def run() -> str:
            rescued, resumed = await queue.resume(db, flt)
            queues = ", ".join(resumed) or "none paused"
            return f"rescued {rescued} jobs; resumed queues: {queues}"

        self._act(run, f"Resume {target.what}?" if target.ask else None)

    async def action_pause(self) -> None:
        """Pause the highlighted job's queue, or resume it if it is paused."""
        if self._refused() or self.last is None:
            return
        job_id = self.query_one(JobTable).highlighted_id()
        name = self._queue_of(job_id) if job_id is not None else None
        if name is None and len(self.view.flt.queues) == 1:
            name = self.view.flt.queues[0]
        if name is None:
            self.notify("no queue selected", severity="warning")
            return
        paused = any(q.paused for q in self.last.queues if q.name == name)
        db = self._store()

        async def run() -> str:
            await queue.set_paused(db, name, not paused)
            return f"queue {name} {'resumed' if paused else 'paused'}"

        self._act(run, None)

    # ------------------------------------------------------------------ batch actions

    def _batch_target(self) -> int | None:
        if isinstance(self.screen, BatchDetailScreen):
            return self.screen.batch_id
        return self.query_one(BatchesTable).highlighted_id()

    async def action_cancel_batch(self) -> None:
        """Cancel the highlighted batch at the provider (asks first)."""
        batch_id = None if self._refused() else self._batch_target()
        if batch_id is None:
            return
        db = self._store()

        async def run() -> str:
            remote = await _import("batchdash.core.remote")
            await remote.cancel_batch(db, batch_id)
            return f"asked the provider to cancel batch {batch_id}"

        self._act(run, f"Cancel batch {batch_id} at the provider?")

    async def action_resubmit_batch(self) -> None:
        """Resubmit the highlighted batch's failed items as a new batch (asks first)."""
        batch_id = None if self._refused() else self._batch_target()
        if batch_id is None:
            return
        db = self._store()
        plan = await db.read(partial(batches.resubmit_plan, batch_id=batch_id))

        async def run() -> str:
            remote = await _import("batchdash.core.remote")
            child = await remote.resubmit_batch(db, batch_id)
            return f"resubmitted {plan.sent(False)} lines of batch {batch_id} as batch {child}"

        self._act(run, _resubmit_question(plan) if plan.sent(False) else None)

    # ------------------------------------------------------------------ action plumbing

    def _store(self) -> Store:
        if self.db is None:
            raise RuntimeError("the store is not open yet")
        return self.db

    def _act(self, run: Callable[[], Awaitable[str]], question: str | None) -> None:
        """Ask `question` (if any), then run the action in the background and refresh."""

        def start() -> None:
            self.run_worker(self._execute(run), group="action", exit_on_error=False)

        if question is None:
            start()
            return
        self.push_screen(ConfirmScreen(question), lambda yes: start() if yes else None)

    async def _execute(self, run: Callable[[], Awaitable[str]]) -> None:
        self.action_note = ""
        try:
            message = await run()
        except Exception as exc:  # e.g. an unknown id or a provider error: show it
            self.notify(f"failed: {exc}", severity="error", timeout=8)
        else:
            self.marks.clear()
            self.all_marked = False
            self.notify(message)
        await self.wait_for_snapshot()


def _resubmit_question(plan: batches.ResubmitPlan) -> str:
    """The `R` confirmation: how many lines go, and how many stay behind and why."""
    question = (
        f"Resubmit {plan.sent(False)} failed, expired, cancelled or missing lines of batch "
        f"{plan.batch_id} as a new batch?"
    )
    if plan.permanent:
        question += (
            f" {plan.permanent} more whose error will not pass on retry stay behind "
            f"(`batchdash batches resubmit {plan.batch_id} --include-permanent` sends them)."
        )
    return question


async def _import(name: str) -> ModuleType:
    """Import a module in a thread, so a slow import (openai) never blocks input."""
    return await asyncio.to_thread(importlib.import_module, name)
