"""The real dashboard in a real terminal (tmux) with TERM=xterm, 16 colours: failed jobs are
bold red, the most prominent colour on screen, and pending stays yellow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.tui import showcase
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

BOLD_RED = "\x1b[1m\x1b[31m"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """A private tmux server (its own socket); killed afterwards."""
    command = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    yield command
    subprocess.run([*command, "kill-server"], check=False, capture_output=True)


def screen(tmux: list[str], *flags: str) -> str:
    return subprocess.run(
        [*tmux, "capture-pane", "-p", *flags], capture_output=True, text=True, check=False
    ).stdout


def coloured_lines(tmux: list[str], *needles: str) -> list[str]:
    """The coloured screen's lines, from the first capture that shows every one of `needles`
    (one capture: a redraw between two captures could move or half-draw a row)."""
    captured: list[str] = []

    def shows_all() -> bool:
        captured[:] = screen(tmux, "-e").splitlines()
        return all(any(needle in line for line in captured) for needle in needles)

    wait_until(shows_all, timeout=30, what=f"a screen showing {needles}")
    return captured


def test_failed_is_bold_red_on_a_16_colour_terminal(tmux: list[str], tmp_path: Path) -> None:
    db = tmp_path / "showcase.db"
    showcase.seed(db)
    app = f"env -u COLORTERM TERM=xterm {sys.executable} -m batchdash --db {db}"
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "36", app], check=True)
    lines = coloured_lines(tmux, "aa90-010", "aa90-011")
    pending = next(line for line in lines if "aa90-010" in line)
    assert "\x1b[33mpending" in pending and "\x1b[91m" not in pending  # yellow, not red
    subprocess.run([*tmux, "send-keys", "4"], check=True)  # only failed jobs
    lines = coloured_lines(tmux, "done-019", "failed       7")
    status_row = next(line for line in lines if "failed       7" in line)
    assert f"{BOLD_RED}failed       7" in status_row
    job_rows = [line for line in lines if "done-01" in line and "failed" in line]
    # The first row holds the cursor, in the cursor's colours.
    assert len(job_rows) > 2 and all(f"{BOLD_RED}failed" in line for line in job_rows[1:])
