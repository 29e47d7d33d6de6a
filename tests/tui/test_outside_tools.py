"""`o`, `e`, `y`: a job's result in $PAGER, a read-only copy of its payload in $EDITOR, its
id on the clipboard. The pager and editor are small scripts recording what they got."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from batchdash.core.db import open_sync_store
from batchdash.tui.widgets.jobs import JobTable
from tests.tui.conftest import SIZE, make_app

RECORDER = """#!/bin/sh
# Record the file given, its permission bits and its text.
{ echo "$1"; stat -c %a "$1"; cat "$1"; } > "$0.got"
"""


def recorder(tmp_path: Path, name: str) -> Path:
    script = tmp_path / name
    script.write_text(RECORDER)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_o_pages_the_result_e_edits_a_read_only_payload_copy_y_copies_the_id(
    showcase_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pager, editor = recorder(tmp_path, "pager"), recorder(tmp_path, "editor")
    monkeypatch.setenv("PAGER", str(pager))
    monkeypatch.setenv("EDITOR", str(editor))
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("3")  # succeeded jobs: they have a result
        await app.wait_for_snapshot()
        job = next(
            j for j in app.last.page.rows if j.id == app.query_one(JobTable).highlighted_id()
        )  # type: ignore[union-attr]
        await pilot.press("o", "e", "y")
        await pilot.pause()
        assert app.clipboard == str(job.id)
        await pilot.press("Y")
        assert app.clipboard == job.key

    with open_sync_store(showcase_db) as db:
        job = db.tx.jobs.get_job(job.id)  # whole: the page's rows leave the texts out
    path, mode, *text = (tmp_path / "pager.got").read_text().splitlines()
    assert path.endswith(f"job-{job.id}-result.json") and mode == "600"
    assert json.loads("\n".join(text)) == job.result
    path, mode, *text = (tmp_path / "editor.got").read_text().splitlines()
    assert path.endswith(f"job-{job.id}-payload.json") and mode == "400"  # read-only
    assert json.loads("\n".join(text)) == job.payload
    assert not Path(path).exists()  # the copy is gone once the editor quits


async def test_o_on_a_job_without_result_says_so(
    showcase_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pager = recorder(tmp_path, "pager")
    monkeypatch.setenv("PAGER", str(pager))
    app = make_app(showcase_db)
    async with app.run_test(size=SIZE) as pilot:
        await app.wait_for_snapshot()
        await pilot.press("1")  # pending: no result, no error
        await app.wait_for_snapshot()
        await pilot.press("o")
        await pilot.pause()
        assert any("has no result yet" in str(n.message) for n in app._notifications)
    assert not (tmp_path / "pager.got").exists()
