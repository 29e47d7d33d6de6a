"""Shared test helpers: a temp database, the CLI as a real subprocess, waiting on conditions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Tests never read the developer's own ~/.config/batchdash/config.toml.
os.environ["BATCHDASH_CONFIG"] = str(ROOT / "tests" / "no-such-config.toml")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database path inside the test's temp dir."""
    return tmp_path / "batchdash.db"


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for CLI subprocesses: the installed package, no inherited DB or key."""
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHDASH_DB", "OPENAI_API_KEY")}
    env.update(extra)
    return env


def cli(
    *args: str, check: bool = True, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `batchdash ARGS` as a real process and return its result."""
    proc = subprocess.run(
        [sys.executable, "-m", "batchdash", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"batchdash {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    """Start `batchdash ARGS` in the background (caller stops it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchdash", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(**env),
        cwd=ROOT,
    )


def wait_until(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `predicate` until it is truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if not predicate():
        raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
