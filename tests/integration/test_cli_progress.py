"""Long commands draw a progress bar (rate, ETA) on a terminal and stay quiet on a pipe."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import ROOT, cli, cli_env
from tests.integration.test_batches import write_requests


def _jobs_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps({"key": f"k{i}", "payload": i}) + "\n" for i in range(n)))
    return path


def _on_a_terminal(*args: str, **env: str) -> tuple[int, str]:
    """Run `batchdash ARGS` with stderr on a pseudo-terminal; return (exit code, what it drew)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchdash", *args],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=cli_env(TERM="xterm", COLUMNS="120", **env),
        cwd=ROOT,
    )
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    return proc.wait(timeout=60), drawn.decode(errors="replace")


@pytest.mark.parametrize("command", ["enqueue", "export"])
def test_a_bar_with_rate_and_eta_on_a_terminal(tmp_path: Path, db_path: Path, command: str) -> None:
    jobs = _jobs_file(tmp_path, 3000)
    if command == "export":
        cli("enqueue", str(jobs), "--handler", "noop", "--db", str(db_path))
        code, drawn = _on_a_terminal(
            "export", "-o", str(tmp_path / "out.jsonl"), "--db", str(db_path)
        )
        assert "exporting" in drawn
    else:
        code, drawn = _on_a_terminal(
            "enqueue", str(jobs), "--handler", "noop", "--db", str(db_path)
        )
        assert "reading jobs.jsonl" in drawn
    assert code == 0
    assert "3000/3000" in drawn and "/s" in drawn  # count and rate
    assert "0:00:0" in drawn  # the ETA column


def test_quiet_on_a_pipe(tmp_path: Path, db_path: Path) -> None:
    jobs = _jobs_file(tmp_path, 3000)
    proc = cli("enqueue", str(jobs), "--handler", "noop", "--db", str(db_path))
    assert proc.stderr == ""
    proc = cli("export", "-o", str(tmp_path / "out.jsonl"), "--db", str(db_path))
    assert proc.stderr == f"wrote {tmp_path / 'out.jsonl'}\n"
    proc = cli("export", "--db", str(db_path))
    assert proc.stderr == "" and len(proc.stdout.splitlines()) == 3000


@pytest.fixture
def sim() -> Iterator[dict[str, str]]:
    """A fast simulator; the environment that points the CLI at it."""
    with SimServer(SimConfig(speed=1000)) as server:
        yield {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sim"}


def test_submit_upload_and_download_draw_bars_on_a_terminal(
    sim: dict[str, str], tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(3000)])
    db = ("--db", str(db_path))
    code, drawn = _on_a_terminal("submit", str(path), "--wait", "--interval", "0.05", *db, **sim)
    assert code == 0
    assert "uploading papers.jsonl" in drawn and "kB" in drawn and "/s" in drawn  # bytes and rate
    assert "ingesting batch 1" in drawn and "3000/3000" in drawn  # the results, as they land
    code, drawn = _on_a_terminal("batches", "download", "1", "-o", str(tmp_path / "r.jsonl"), *db)
    assert code == 0
    assert "downloading batch 1" in drawn and "3000/3000" in drawn and "0:00:0" in drawn


def test_submit_and_download_quiet_on_a_pipe(
    sim: dict[str, str], tmp_path: Path, db_path: Path
) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(3000)])
    db = ("--db", str(db_path))
    proc = cli("submit", str(path), "--wait", "--interval", "0.05", *db, **sim)
    assert proc.stderr == ""
    proc = cli("batches", "download", "1", "-o", str(tmp_path / "r.jsonl"), *db)
    assert proc.stderr == ""
    proc = cli("batches", "download", "1", *db)
    assert proc.stderr == "" and len(proc.stdout.splitlines()) == 3000
