"""The dashboard's state and the refresh loop that keeps its panes current.

One long-lived store (`core.db.open_store`, its own database thread). A worker reads a whole
`core.snapshot.Snapshot` for the current view in one hop to the connection's thread (a few
indexed queries and one page of rows), posts it as a message, and the handler applies a
keyed diff to the panes inside `batch_update()`, then re-arms a timer, so fetches never
overlap and input never waits on the database. Remote batches are polled through
`core.sync.run_cycle` on their own slower cadence. Failures of either are shown in the
status line; the loop carries on.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from types import ModuleType

from textual import on
from textual.app import App
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, TabbedContent

from batchdash.core import snapshot
from batchdash.core.db import DbLocation
from batchdash.core.db.ports import Store
from batchdash.core.snapshot import Snapshot, View
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.detail import JobDetailPane
from batchdash.tui.widgets.heartbeats import HeartbeatsTable
from batchdash.tui.widgets.jobs import JobTable
from batchdash.tui.widgets.overview import OverviewHeader
from batchdash.tui.widgets.qa import QAPane
from batchdash.tui.widgets.status import StatusPane
from batchdash.tui.widgets.statusline import StatusLine

#: Jobs per page of the queue pane.
PAGE_SIZE = 100
#: Batches per page of the batches pane.
BATCH_PAGE_SIZE = 50
#: After the cursor moves, wait this long for it to settle before reading the new detail.
SELECT_DEBOUNCE = 0.08


#: While nothing is written, the picture is read again this often (seconds): only the
#: clock moves it then (ages, durations, a silent worker turning stale).
FULL_EVERY = 5.0
#: Shortest pause between a write another process made and the refresh it triggers.
CHANGE_GAP = 0.3
#: Longest single wait for a change notification (the follower loops).
FOLLOW_WAIT_SECONDS = 60.0
#: After a read of S seconds, automatic refreshes (the timer, other processes' writes) wait
#: this many times S: a view the database answers slowly (a text no job of the status holds
#: is checked against every match: seconds at 10M jobs) then takes at most a quarter of
#: the server's time instead of all of it. Keys still read at once.
SLOW_READ_PAUSE = 3.0
#: Reads at least this long are named in the status line, with the pause they cause.
SLOW_READ_SHOWN = 1.0


class RefreshingApp(App[None]):
    """The dashboard's state (store, view, last snapshot, marks) and its refresh loop."""

    class SnapshotReady(Message):
        """A snapshot was read for `view` (fetch number `seq`)."""

        def __init__(
            self,
            seq: int,
            view: View,
            snap: Snapshot | None,
            seconds: float,
            token: object,
            pane_only: bool = False,
        ) -> None:
            super().__init__()
            self.seq = seq
            self.view = view
            #: None when the store had not changed since the snapshot on screen was read.
            self.snap = snap
            self.seconds = seconds
            #: The store's change token from before the read.
            self.token = token
            #: Only the jobs pane was read; the rest is the snapshot on screen's.
            self.pane_only = pane_only

    class RefreshFailed(Message):
        """Reading a snapshot failed; the loop goes on."""

        def __init__(self, seq: int, error: str) -> None:
            super().__init__()
            self.seq = seq
            self.error = error

    def __init__(
        self,
        where: DbLocation,
        *,
        refresh: float = 1.0,
        poll_every: float = 30.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        slow_read_shown: float = SLOW_READ_SHOWN,
    ) -> None:
        super().__init__()
        self.where = where
        self.refresh_every = refresh
        self.poll_every = poll_every
        self.read_only = read_only
        self.clock = clock
        #: Reads at least this long are named in the status line (SLOW_READ_SHOWN).
        self.slow_read_shown = slow_read_shown
        self.db: Store | None = None
        # The jobs tab shows first: the QA summary (all verdicts aggregated) is read only
        # once its tab opens, not before the first paint.
        self.view = View(limit=PAGE_SIZE, batch_limit=BATCH_PAGE_SIZE, with_qa=False)
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
        #: (change token, view, monotonic time) of the snapshot on screen.
        self._read: tuple[object, View | None, float] = (None, None, 0.0)
        #: The next fetch reads even if nothing changed (`wait_for_snapshot`, ctrl+r).
        self._force_read = False
        #: Seconds the last snapshot read took, and the monotonic time until which automatic
        #: refreshes wait because of it (SLOW_READ_PAUSE).
        self.last_read_seconds = 0.0
        self._paused_until = 0.0

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
        force, self._force_read = self._force_read, False
        self.run_worker(
            self._fetch(self._seq, self.view, self.clock(), force),
            group="refresh",
            exit_on_error=False,
        )

    def follow_changes(self) -> None:
        """Refresh soon after another process writes, not only on the timer (PostgreSQL
        notifies writes, a burst at least every 0.1 s; on SQLite the waits run out and the
        timer alone refreshes)."""
        self.run_worker(self._follow_changes(), group="follow", exit_on_error=False)

    async def _follow_changes(self) -> None:
        # A burst of writes (busy workers commit many times a second) becomes one refresh
        # per gap, at most twice as often as the timer: sooner, never a refresh storm.
        gap = max(CHANGE_GAP, self.refresh_every / 2)
        while self.db is not None:
            if await self.db.wait_for_change(FOLLOW_WAIT_SECONDS):
                await asyncio.sleep(gap)
                self._kick(self._pause_left())

    async def _fetch(self, seq: int, view: View, now: float, force: bool = False) -> None:
        """Read a snapshot on the store's thread; never touches widgets.

        Unless `force`d, while nothing was written since the picture on screen was read (and
        it is recent), it reads nothing for the same view and only the jobs pane for a new
        filter, order or page (a key press then costs one page and one detail).
        """
        assert self.db is not None
        start = time.perf_counter()
        try:
            token = await self.db.change_token()
            last, fresh = self.last, not force and self._fresh(token)
            if fresh and view == self._read[1]:
                self.post_message(self.SnapshotReady(seq, view, None, 0.0, token))
                return
            pane_only = fresh and last is not None and _jobs_pane_only(view, self._read[1])
            if pane_only and last is not None:
                read = partial(snapshot.jobs_pane_only, view=view, last=last)
            else:
                read = partial(snapshot.snapshot, view=view, now=now)
            snap = await self.db.read(read)
        except Exception as exc:  # shown in the status line; the loop goes on
            self.post_message(self.RefreshFailed(seq, f"refresh failed: {exc}"))
            return
        seconds = time.perf_counter() - start
        self.post_message(self.SnapshotReady(seq, view, snap, seconds, token, pane_only))

    def _fresh(self, token: object) -> bool:
        """Whether the picture on screen still holds: nothing written since it was read (by
        the token) and younger than FULL_EVERY (ages and worker health move with the clock)."""
        read_token, _, read_at = self._read
        return token is not None and token == read_token and time.monotonic() - read_at < FULL_EVERY

    def on_refreshing_app_snapshot_ready(self, message: SnapshotReady) -> None:
        """Apply a snapshot on the main thread, then re-arm the timer."""
        self._fetching = False
        start = time.perf_counter()
        if message.view != self.view:
            self._again = True  # the view changed while reading: read it again
        elif message.snap is not None:
            self.refresh_error = None
            self.last_read_seconds = message.seconds
            self._paused_until = time.monotonic() + SLOW_READ_PAUSE * message.seconds
            # A jobs pane read on its own leaves the rest of the picture as old as it was.
            read_at = self._read[2] if message.pane_only else time.monotonic()
            self._read = (message.token, message.view, read_at)
            with self.batch_update():
                self._apply(message.snap)
        self.cycle_seconds = (message.seconds, time.perf_counter() - start)
        self._done(message.seq)

    def on_refreshing_app_refresh_failed(self, message: RefreshFailed) -> None:
        """Show the error and keep refreshing."""
        self._fetching = False
        self.refresh_error = message.error
        self._read = (None, None, 0.0)  # read in full next time, to clear the error
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
            self._timer = self.set_timer(max(self.refresh_every, self._pause_left()), self._kick)

    def _pause_left(self) -> float:
        """Seconds automatic refreshes still wait after the last read (SLOW_READ_PAUSE)."""
        return max(0.0, self._paused_until - time.monotonic())

    async def wait_for_snapshot(self) -> None:
        """Refresh now and return once a snapshot read after this call is applied."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._seq + 1, future))
        self._force_read = True
        self._kick()
        await future

    def _apply(self, snap: Snapshot) -> None:
        self.last = snap
        if not self.is_running:
            return  # a read that lands while the app shuts down has nothing to draw on
        if isinstance(self.screen, BatchDetailScreen):
            self.screen.show(snap.batch, snap.now)
        if isinstance(self.screen, ModalScreen | BatchDetailScreen):
            return  # keep reading, but leave the panes alone under a dialog
        self.query_one(OverviewHeader).show(snap.overview, snap.workers)
        self.query_one(StatusPane).show(snap.overview, snap.queues, self.view.flt, snap.limits)
        table = self.query_one(JobTable)
        table.show(snap.page, set(self.marks), self.all_marked, snap.now)
        self.query_one(JobDetailPane).show(snap.detail, snap.now)
        self.show_tab_table()
        if snap.qa is not None:
            self.query_one(QAPane).show(snap.qa)
        self._show_status()
        self._follow_cursor()

    def show_tab_table(self) -> None:
        """Fill the batches or workers table from the last snapshot while its tab is the
        one showing (a hidden table is filled when its tab opens, not on every refresh)."""
        if self.last is None:
            return
        tab = self.query_one(TabbedContent).active
        if tab == "batches":
            self.query_one(BatchesTable).show(self.last.batches)
        elif tab == "workers":
            self.query_one(HeartbeatsTable).show(self.last.workers)

    def _show_status(self) -> None:
        self.query_one(StatusLine).show(
            self.last.page if self.last else None,
            self.view.flt,
            marks=len(self.marks),
            unseen=len(self._unseen_marks()),
            all_marked=self.all_marked,
            refreshed_at=self.last.now if self.last else None,
            slow_read=(
                self.last_read_seconds if self.last_read_seconds >= self.slow_read_shown else None
            ),
            pause=SLOW_READ_PAUSE,
            error=self.refresh_error or self.poll_error,
            read_only=self.read_only,
            batch_span=self._batch_span(),
            note=self.action_note,
        )

    def _unseen_marks(self) -> list[int]:
        """The marked jobs that are not on this page, by id."""
        shown = {job.id for job in self.last.page.rows} if self.last else set()
        return [i for i in sorted(self.marks) if i not in shown]

    def _batch_span(self) -> tuple[int, int, int] | None:
        """(offset, shown, total) of the batches pane while it is the one showing."""
        if self.last is None or self.query_one(TabbedContent).active != "batches":
            return None
        return (self.view.batch_offset, len(self.last.batches), self.last.batch_total)

    def _follow_cursor(self) -> None:
        """Point the detail pane at the highlighted job (read after the cursor settles,
        unless the last snapshot already holds it: a new page brings its cursor's job)."""
        if not self.is_running:
            return  # a highlight that lands while the app shuts down: no widgets left
        table = self.query_one(JobTable)
        job_id = table.highlighted_id()
        if job_id is None or (job_id, table.cursor_row) == (self.view.job_id, self.view.cursor):
            return
        self.view = replace(self.view, job_id=job_id, cursor=table.cursor_row)
        detail = self.last.detail if self.last else None
        if detail is None or detail.job.id != job_id:
            self._kick(SELECT_DEBOUNCE)

    @on(DataTable.RowHighlighted, "#job-table")
    def _job_highlighted(self) -> None:
        self._follow_cursor()

    def action_refresh_now(self) -> None:
        """Read the store now, and poll remote batches now."""
        self._force_read = True
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
            sync = await import_in_thread("batchdash.core.sync")
            report = await sync.run_cycle(self.db, remote=True)
            errors = list(getattr(report, "errors", []))
            self.poll_error = f"poll: {errors[0]}" if errors else None
        except Exception as exc:  # a provider outage is shown, never fatal
            self.poll_error = f"poll failed: {exc}"
        finally:
            self._polling = False
        self._kick()


def _jobs_pane_only(view: View, before: View | None) -> bool:
    """Whether `view` differs from `before` in the jobs pane alone (filter, order, page,
    cursor), so the rest of a picture read for `before` shows it too."""
    return before is not None and view == replace(
        before,
        flt=view.flt,
        order=view.order,
        offset=view.offset,
        page=view.page,
        page_number=view.page_number,
        job_id=view.job_id,
        cursor=view.cursor,
    )


async def import_in_thread(name: str) -> ModuleType:
    """Import a module in a thread, so a slow import (openai) never blocks input."""
    return await asyncio.to_thread(importlib.import_module, name)
