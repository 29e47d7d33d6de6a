"""Hand a job to the tools outside the dashboard: `o` its result in $PAGER, `e` its payload
in $EDITOR (a read-only copy: the job never changes), `y` / `Y` its id / key to the
clipboard (OSC 52, which most terminals and tmux pass on).

The dashboard suspends while the tool runs and comes back as it was. The texts are read
whole from the store: the detail pane holds only their first few thousand characters.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import SuspendNotSupported

from batchdash.core.db.ports import Tx
from batchdash.core.models import Job
from batchdash.tui.actions import ActingApp
from batchdash.tui.widgets.jobs import JobTable


class OutsideApp(ActingApp):
    """The dashboard's actions that open a job in another program or the clipboard."""

    async def action_page_result(self) -> None:
        """Open the highlighted job's result (or its error) in $PAGER."""
        job = await self._highlighted_job()
        if job is None:
            return
        if job.result is None and not job.error:
            self.notify(f"job #{job.id} has no result yet", severity="warning")
            return
        text = _pretty(job.result) if job.result is not None else job.error or ""
        self._open_copy("PAGER", "less", text, f"job-{job.id}-result", read_only=False)

    async def action_edit_payload(self) -> None:
        """Open a read-only copy of the highlighted job's payload in $EDITOR."""
        job = await self._highlighted_job()
        if job is not None:
            self._open_copy("EDITOR", "vi", _pretty(job.payload), f"job-{job.id}-payload", True)

    def action_copy_id(self, what: str = "id") -> None:
        """Copy the highlighted job's id (or its key) to the clipboard."""
        job = self._shown_job()
        if job is None:
            self.notify("no job selected", severity="warning")
            return
        text = str(job.id) if what == "id" else job.key
        self.copy_to_clipboard(text)
        self.notify(f"copied job {what} {text}")

    def _shown_job(self) -> Job | None:
        job_id = self.query_one(JobTable).highlighted_id()
        rows = self.last.page.rows if self.last else []
        return next((job for job in rows if job.id == job_id), None)

    async def _highlighted_job(self) -> Job | None:
        """The whole highlighted job, read now (None, said, when there is none)."""
        shown = self._shown_job()
        if shown is None or self.db is None:
            self.notify("no job selected", severity="warning")
            return None
        return await self.db.read(partial(_read_job, job_id=shown.id))

    def _open_copy(
        self, variable: str, default: str, text: str, name: str, read_only: bool
    ) -> None:
        """Write `text` to a private temp file, run $`variable` on it, then delete it."""
        folder = Path(tempfile.mkdtemp(prefix="batchdash-"))
        path = folder / f"{name}.json"
        path.write_text(text + "\n", encoding="utf-8")
        # Private to the user; read-only for the editor, which then warns before writing
        # (the job itself never changes either way).
        path.chmod(0o400 if read_only else 0o600)
        command = [*shlex.split(os.environ.get(variable) or default), str(path)]
        try:
            self._run_outside(command)
        except OSError as exc:  # no such program
            self.notify(f"${variable}: {exc}", severity="error")
        finally:
            path.unlink(missing_ok=True)
            folder.rmdir()

    def _run_outside(self, command: list[str]) -> None:
        """Run `command` on the terminal, the dashboard suspended meanwhile."""
        try:
            with self.suspend():
                subprocess.run(command, check=False)
        except SuspendNotSupported:  # headless (tests) or in a browser: no terminal to lend
            subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True)
        self.refresh(layout=True)


def _read_job(tx: Tx, job_id: int) -> Job:
    return tx.jobs.get_job(job_id)


def _pretty(value: Any) -> str:
    """JSON indented for reading; a plain string stays as it is."""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
