"""One installed package: `batchdash.core` and `batchdash.tui`, never top-level `core`/`tui`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT, cli_env


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchdash", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=60,
    )


def test_every_package_folder_is_installed_under_batchdash() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {"batchdash"} | {
        "batchdash." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("core", "tui")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == on_disk
    assert config["package-dir"] == {
        "batchdash": "batchdash",
        "batchdash.core": "core",
        "batchdash.tui": "tui",
    }


def test_version_and_module_entry_point(tmp_path: Path) -> None:
    proc = _run("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("batchdash ")


def test_works_beside_a_project_that_has_its_own_core_and_tui(tmp_path: Path) -> None:
    # A Django-style app: its own `core` and `tui` packages in the current directory.
    for name in ("core", "tui"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('not batchdash')\n")
    db = str(tmp_path / "b.db")
    assert _run("init", "--db", db, cwd=tmp_path).returncode == 0
    started = _run("workers", "start", "-n", "1", "--db", db, cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "started 1" in started.stdout
    finally:
        stopped = _run("workers", "stop", "--db", db, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
