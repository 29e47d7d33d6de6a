"""Pilot tests: every key action changes the database as expected and the view follows;
filters; read-only mode; the refresh keeps the cursor; untrusted text stays literal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot

from batchdash.core.actor import os_user
from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_store, open_sync_store, parse_location
from batchdash.core.models import JobFilter, NewJob
from batchdash.tui import showcase
from batchdash.tui.app import BatchDashApp
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.screens.confirm import ConfirmScreen
from batchdash.tui.screens.filter import FilterScreen
from batchdash.tui.screens.help import HelpScreen
from batchdash.tui.widgets.jobs import JobTable
from batchdash.tui.widgets.statusline import StatusLine
from tests.conftest import open_db
from tests.tui.conftest import SIZE, make_app


def statuses(path: Path, flt: JobFilter) -> dict[str, int]:
    with open_sync_store(path) as db:
        jobs = db.tx.jobs.list_jobs(flt)
    found: dict[str, int] = {}
    for job in jobs:
        found[job.status] = found.get(job.status, 0) + 1
    return found


def paused(path: Path, name: str) -> bool:
    with open_sync_store(path) as db:
        return next(q.paused for q in db.tx.queues.list_queues() if q.name == name)


def rows(app: BatchDashApp) -> list[int]:
    table = app.query_one(JobTable)
    return [int(str(key.value)) for key in table.rows]


def status_text(app: BatchDashApp) -> str:
    return str(app.query_one(StatusLine).content)


async def filter_to(app: BatchDashApp, pilot: Pilot[None], text: str) -> None:
    await pilot.press("slash")
    assert isinstance(app.screen, FilterScreen)
    app.screen.query_one("#filter-input").value = text  # type: ignore[attr-defined]
    await pilot.press("enter")
    await app.wait_for_snapshot()


async def test_number_keys_filter_by_status_with_live_counts(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        assert len(rows(app)) == 100  # one page of 172
        await pilot.press("4")
        await app.wait_for_snapshot()
        assert app.view.flt == JobFilter(statuses=("failed",))
        assert len(rows(app)) == 7
        assert app.last is not None and app.last.page.matching == 7
        await pilot.press("0")
        await app.wait_for_snapshot()
        assert len(rows(app)) == 100


async def test_filter_language_and_a_bad_qualifier(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("slash")
        box = app.screen.query_one("#filter-input")
        box.value = "state:failed"  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert isinstance(app.screen, FilterScreen)  # stays open, says why
        assert "unknown qualifier 'state'" in str(app.screen.query_one("#filter-error").render())
        box.value = "queue:papers status:failed key:arxiv*"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await app.wait_for_snapshot()
        assert len(rows(app)) == 4
        await pilot.press("escape")  # clears the filter
        await app.wait_for_snapshot()
        assert app.view.flt.is_empty


async def test_retry_the_highlighted_failed_job(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "queue:papers status:failed")
        first = rows(app)[0]
        await pilot.press("r")  # one job: no question
        await _settle(app, lambda: first not in rows(app))
        assert statuses(showcase_db, JobFilter(ids=(first,))) == {"pending": 1}
        assert len(rows(app)) == 3


async def test_cancel_marked_jobs_after_confirming(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "queue:papers status:pending")
        before = rows(app)
        await pilot.press("space", "space")
        assert set(app.marks) == set(before[:2])
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 marked jobs" in app.screen.question
        await pilot.press("y")
        await _settle(app, lambda: not app.marks and before[0] not in rows(app))
        assert statuses(showcase_db, JobFilter(ids=tuple(before[:2]))) == {"cancelled": 2}


async def test_cancel_all_matching_shows_the_count_and_no_means_no(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "queue:summaries")
        await pilot.press("a", "c")
        assert isinstance(app.screen, ConfirmScreen)
        assert "all 15 jobs matching the filter" in app.screen.question
        await pilot.press("n")
        assert statuses(showcase_db, JobFilter(queues=("summaries",))) == {"pending": 15}
        await pilot.press("c", "y")
        await _settle(app, lambda: not app.all_marked)
        assert statuses(showcase_db, JobFilter(queues=("summaries",))) == {"cancelled": 15}


async def test_pause_toggles_the_highlighted_jobs_queue_and_resume_unpauses(
    showcase_db: Path,
) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "queue:chat")
        await pilot.press("p")
        await _settle(app, lambda: paused(showcase_db, "chat"))
        assert app.last is not None
        assert any(q.paused for q in app.last.queues if q.name == "chat")
        await pilot.press("p")
        await _settle(app, lambda: not paused(showcase_db, "chat"))
        await filter_to(app, pilot, "queue:summaries")
        await pilot.press("u")
        await _settle(app, lambda: not paused(showcase_db, "summaries"))


async def test_read_only_hides_and_refuses_actions(showcase_db: Path) -> None:
    app = make_app(showcase_db, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("4")
        await app.wait_for_snapshot()
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "app.retry" not in shown and "app.cancel" not in shown
        await pilot.press("r", "c", "space", "p")
        await app.action_retry()  # even when invoked directly
        await app.wait_for_snapshot()
        assert not isinstance(app.screen, ConfirmScreen)
        assert statuses(showcase_db, JobFilter(statuses=("failed",))) == {"failed": 7}
        assert not paused(showcase_db, "papers")


async def test_help_is_built_from_the_live_bindings(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(what for _, what, _ in app.screen.help_rows)
        for phrase in ("Retry", "Cancel", "Filter", "Mark all matching", "Only failed"):
            assert phrase in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_refresh_keeps_the_cursor_on_its_job_as_rows_arrive(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("down", "down", "down")
        table = app.query_one(JobTable)
        chosen = table.highlighted_id()
        with open_sync_store(showcase_db) as db:
            new = [NewJob(f"late-{i}", {}) for i in range(3)]
            db.write(lambda c: c.jobs.enqueue("papers", "sim", new, time.time(), None))
        await app.wait_for_snapshot()
        assert table.highlighted_id() == chosen
        assert table.cursor_row == 6  # three new rows above it
        assert app.last is not None and app.last.detail is not None
        assert app.last.detail.job.id == chosen


async def test_untrusted_text_is_never_markup(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=(200, 36)) as pilot:  # an error column wide enough
        await app.wait_for_snapshot()
        await filter_to(app, pilot, '"Please reduce"')
        table = app.query_one(JobTable)
        assert len(rows(app)) == 1
        error_cell = table.get_row(str(rows(app)[0]))[-1]
        assert "[bold red]Please reduce[/]" in str(error_cell)


async def test_batch_detail_lists_items_by_outcome(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("B", "down", "down", "enter")
        assert isinstance(app.screen, BatchDetailScreen)
        await app.wait_for_snapshot()
        screen = app.screen
        assert screen.batch_id == 2
        assert screen.query_one("#batch-items").row_count == 20  # type: ignore[attr-defined]
        await pilot.press("o", "o", "o")  # all → pending → succeeded → errored
        await pilot.press("o")  # → non_2xx
        await app.wait_for_snapshot()
        assert screen.query_one("#batch-items").row_count == 3  # type: ignore[attr-defined]
        await pilot.press("escape")
        assert not isinstance(app.screen, BatchDetailScreen)
        assert app.view.batch_id is None


async def _settle(app: BatchDashApp, condition: object, timeout: float = 10.0) -> None:
    """Refresh until `condition()` holds (an action runs in the background first)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the view did not follow the action"
        await app.wait_for_snapshot()


def write_requests(path: Path, custom_ids: list[str]) -> Path:
    """A batch input file: one small chat request per custom_id."""
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    lines = (
        {"custom_id": c, "method": "POST", "url": "/v1/chat/completions", "body": request}
        for c in custom_ids
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def test_cancel_batch_remotely_on_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchdash.core.providers.openai_batch import submit_file
    from batchdash.core.sim import SimConfig, SimServer

    path = tmp_path / "batches.db"
    lines = write_requests(tmp_path / "in.jsonl", [f"c{i}" for i in range(20)])
    # Slow enough that the batch is still running when we cancel it.
    with SimServer(SimConfig(speed=1.0, lines_per_second=1.0)) as sim:
        monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        db = await open_store(path)
        (batch_id,) = await submit_file(db, lines, queue="remote")
        await db.close()
        app = make_app(path, poll_every=0.5)
        async with app.run_test(size=SIZE) as pilot:
            await app.wait_for_snapshot()
            await pilot.press("B", "c")
            assert isinstance(app.screen, ConfirmScreen)
            assert f"Cancel batch {batch_id}" in app.screen.question
            await pilot.press("y")
            await _settle(
                app,
                lambda: (
                    app.last is not None
                    and app.last.batches[0].batch.state in ("cancelling", "cancelled")
                ),
                timeout=30,
            )
        with open_db(path) as store:
            events = store.read(lambda tx: tx.events.batch_events(batch_id))
        assert ("batch_cancel", f"requested by {os_user()} via tui") in [
            (e.kind, e.detail) for e in events
        ]


async def test_resubmit_sends_the_failed_lines_as_a_child_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchdash.core.providers.openai_batch import submit_file
    from batchdash.core.sim import SimConfig, SimServer
    from batchdash.core.sync import run_cycle

    path = tmp_path / "resubmit.db"
    # The simulator fails the z- lines: one non-2xx answer, one error-file line.
    lines = write_requests(tmp_path / "in.jsonl", ["ok-1", "ok-2", "z-non2xx", "z-errline"])
    with SimServer(SimConfig(speed=1000.0)) as sim:
        monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        async with await open_store(path) as db:
            (parent,) = await submit_file(db, lines, queue="remote")
            deadline = time.monotonic() + 30
            while (await db.read(lambda c: c.batches.get_batch(parent))).ingested_at is None:
                assert time.monotonic() < deadline, "the batch never finished"
                await run_cycle(db)
        app = make_app(path, poll_every=3600)
        async with app.run_test(size=SIZE) as pilot:
            await app.wait_for_snapshot()
            # `r` on remote failures retries nothing and says which resubmit does it.
            await filter_to(app, pilot, "status:failed")
            await pilot.press("r")
            await _settle(app, lambda: "ran in remote batch" in status_text(app))
            assert f"1 of the selected jobs ran in remote batch {parent}" in status_text(app)
            assert "batches resubmit" in status_text(app)
            await pilot.press("B", "R")
            assert isinstance(app.screen, ConfirmScreen)
            assert f"Resubmit 2 failed, expired, cancelled or missing lines of batch {parent}" in (
                app.screen.question
            )
            await pilot.press("y")
            await _settle(app, lambda: app.last is not None and len(app.last.batches) == 2)
    with open_sync_store(path) as db:
        [child] = [b for b in db.tx.batches.list_batches() if b.parent_id == parent]
        items = db.tx.items.list_batch_items(child.id)
    assert sorted(i.custom_id for i in items) == ["z-errline", "z-non2xx"]


async def test_batches_pane_pages_like_the_jobs_pane(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    with open_sync_store(path) as db:
        for i in range(120):
            new = NewBatch(f"q{i}", "/v1/chat/completions", "m", state="succeeded")
            db.write(lambda c, new=new, i=i: c.batches.add_batch(new, 1000.0 + i))
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("B")
        await _settle(app, lambda: "of 120 batches" in status_text(app))
        assert "1–50 of 120 batches" in status_text(app)
        await pilot.press("right_square_bracket")
        await _settle(app, lambda: "51–100 of 120 batches" in status_text(app))
        await pilot.press("right_square_bracket", "right_square_bracket")
        await _settle(app, lambda: "101–120 of 120 batches" in status_text(app))
        assert app.last is not None and [r.batch.id for r in app.last.batches][-1] == 1
        await pilot.press("left_square_bracket")
        await _settle(app, lambda: "51–100 of 120 batches" in status_text(app))


async def test_a_filter_change_clears_marks_so_actions_touch_only_what_is_shown(
    showcase_db: Path,
) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("4")  # failed
        await app.wait_for_snapshot()
        failed = rows(app)[:2]
        await pilot.press("space", "space")
        assert "2 marked" in status_text(app)
        await filter_to(app, pilot, "queue:papers status:failed")  # the marked are not here
        assert not set(failed) & set(rows(app))
        assert "marked" not in status_text(app)
        shown = app.query_one(JobTable).highlighted_id()
        assert shown is not None
        await pilot.press("r")  # acts on the highlighted job alone, no question
        assert not isinstance(app.screen, ConfirmScreen)
        await _settle(app, lambda: shown not in rows(app))
        assert statuses(showcase_db, JobFilter(ids=tuple(failed))) == {"failed": 2}
        assert statuses(showcase_db, JobFilter(ids=(shown,))) == {"pending": 1}
        await filter_to(app, pilot, "queue:papers")
        await pilot.press("space")
        await filter_to(app, pilot, "queue:chat")
        assert not app.marks and "marked" not in status_text(app)


async def test_marks_off_the_page_are_counted_in_the_question(showcase_db: Path) -> None:
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        marked = rows(app)[0]
        await pilot.press("space", "right_square_bracket")  # mark one, then page 2
        await app.wait_for_snapshot()
        assert marked not in rows(app)
        assert "1 marked (1 not on this page)" in status_text(app)
        await pilot.press("c")  # a single marked job, but not on screen: ask, say where
        assert isinstance(app.screen, ConfirmScreen)
        assert "1 marked job" in app.screen.question
        assert "1 not on this page" in app.screen.question
        assert f"#{marked}" in app.screen.question
        await pilot.press("n")
        assert statuses(showcase_db, JobFilter(ids=(marked,))) == {"pending": 1}


async def test_filter_page_and_retry_on_either_back_end(any_db: str) -> None:
    """The dashboard on the showcase in a SQLite file and on a PostgreSQL database alike."""
    where = parse_location(any_db)
    showcase.seed(where)
    app = make_app(where)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        first_page = rows(app)
        assert len(first_page) == 100  # one page of 172
        await pilot.press("right_square_bracket")
        await _settle(app, lambda: rows(app) != first_page)
        assert len(rows(app)) == 72 and not set(rows(app)) & set(first_page)
        await pilot.press("4")
        await app.wait_for_snapshot()
        assert len(rows(app)) == 7 and app.last is not None and app.last.page.matching == 7
        await filter_to(app, pilot, "queue:papers status:failed")
        first = rows(app)[0]
        await pilot.press("r")
        await _settle(app, lambda: first not in rows(app))
        with open_db(any_db) as db:
            assert [j.status for j in db.tx.jobs.list_jobs(JobFilter(ids=(first,)))] == ["pending"]
        assert len(rows(app)) == 3
