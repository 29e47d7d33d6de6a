"""The dashboard's actions: marks, job actions (retry, cancel, resume, pause) and batch
actions (cancel, resubmit).

Actions call core functions, never SQL, ask before acting in bulk, run in the background
and refresh the view. `--read-only` hides them and refuses them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from batchdash.core import batches, queue
from batchdash.core.actor import Actor, Origin
from batchdash.core.db.ports import Store
from batchdash.core.models import JobFilter
from batchdash.tui.refresh import RefreshingApp, import_in_thread
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.screens.confirm import ConfirmScreen
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.jobs import JobTable

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


class ActingApp(RefreshingApp):
    """The refreshing dashboard plus the actions that change jobs, queues and batches.

    `origin` says where it runs (`tui` in a terminal, `web` served to a browser); the
    events of its actions name it and the OS user (core/actor.py).
    """

    def __init__(self, *args: Any, origin: Origin = Origin.TUI, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = Actor.current(origin)

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
        unseen = self._unseen_marks()
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
            n = await queue.retry(db, target.flt, self.actor)
            # Remote lines run again only in a child batch: say which one, like the CLI.
            remote = await queue.remote_retries(db, target.flt)
            self.action_note = "; ".join(f"{r.advice()} or press R on it (B)" for r in remote)
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
            done, flagged = await queue.cancel(db, target.flt, self.actor)
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
            rescued, resumed = await queue.resume(db, flt, self.actor)
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
            await queue.set_paused(db, name, not paused, self.actor)
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
            remote = await import_in_thread("batchdash.core.remote")
            await remote.cancel_batch(db, batch_id, self.actor)
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
            remote = await import_in_thread("batchdash.core.remote")
            child = await remote.resubmit_batch(db, batch_id, actor=self.actor)
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
