"""Pilot tests of the provider in the dashboard: the batches pane's column, the `provider:`
filter over jobs, and Anthropic's request counts in batch detail."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_sync_store
from batchdash.core.models import JobFilter, NewJob
from batchdash.tui.app import BatchDashApp
from batchdash.tui.screens.batch import BatchDetailScreen
from batchdash.tui.widgets.batches import BatchesTable
from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app
from tests.tui.test_app import filter_to

COUNTS = {"processing": 0, "succeeded": 2, "errored": 1, "canceled": 0, "expired": 0}


def add_anthropic_work(path: Path) -> int:
    """A finished Anthropic batch of 3 lines (through endpoint `eu`) and one local job of
    the anthropic handler, beside the showcase's OpenAI work."""
    with open_sync_store(path) as db:
        new = NewBatch(
            "claude", "/v1/messages", "claude-x", provider="anthropic", endpoint_name="eu"
        )
        batch_id = db.write(lambda tx: tx.batches.add_batch(new, 1.0))
        lines = [(n, f"c-{n}", f"c-{n}", "{}") for n in (1, 2, 3)]
        db.write(lambda tx: tx.items.add_batch_lines(batch_id, "claude", "batch", lines, 1.0))
        fields = {
            "remote_id": "msgbatch_01",
            "raw_status": "ended",
            "state": "partial",
            "request_counts": COUNTS,
        }
        db.write(lambda tx: tx.batches.record_remote(batch_id, fields, 2.0))
        db.write(
            lambda tx: tx.jobs.enqueue("chat", "anthropic", [NewJob("c-local", {})], 1.0, None)
        )
    return batch_id


def job_keys(app: BatchDashApp) -> set[str]:
    assert app.last is not None
    return {job.key for job in app.last.page.rows}


async def test_provider_filter_shows_only_that_providers_work(showcase_db: Path) -> None:
    add_anthropic_work(showcase_db)
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await filter_to(app, pilot, "provider:anthropic")
        assert app.view.flt == JobFilter(providers=("anthropic",))
        assert job_keys(app) == {"c-1", "c-2", "c-3", "c-local"}
        assert len(app.query_one(JobTable).rows) == 4
        await filter_to(app, pilot, "provider:openai status:failed")
        keys = job_keys(app)
        assert keys and not keys & {"c-1", "c-2", "c-3", "c-local"}


async def test_batches_pane_names_the_provider_and_detail_shows_anthropic_counts(
    showcase_db: Path,
) -> None:
    batch_id = add_anthropic_work(showcase_db)
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("B")
        table = app.query_one(BatchesTable)
        providers = {str(table.get_cell(key, "provider")) for key in table.rows}
        assert providers == {"openai", "anthropic@eu"}
        await pilot.press(*["down"] * table.get_row_index(str(batch_id)), "enter")
        assert isinstance(app.screen, BatchDetailScreen)
        await app.wait_for_snapshot()
        head = str(app.screen.query_one("#batch-head", Static).content)
        assert "anthropic@eu" in head
        assert "processing 0  succeeded 2  errored 1  canceled 0  expired 0" in head
