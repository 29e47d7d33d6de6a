"""The simulator's web stack is the `sim` extra; demo and sim-server say how to add it."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

from tests.conftest import ROOT, cli_env

#: A sitecustomize that makes `import starlette` fail in every Python process that has its
#: folder on PYTHONPATH, as on an install without the `sim` extra.
BLOCKER = """
import sys

class _NoStarlette:
    def find_spec(self, name, path=None, target=None):
        if name == "starlette" or name.startswith("starlette."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoStarlette())
"""

SIM_PACKAGES = {"starlette", "uvicorn", "python-multipart"}


def _without_starlette(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(PYTHONPATH=str(site)),
        timeout=60,
    )


def _assert_install_hint(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "starlette" in lines[0] and "pip install 'batchdash[sim]'" in lines[0]


def test_demo_without_the_sim_extra_says_how_to_install_it(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    proc = _without_starlette(
        tmp_path, "-m", "batchdash", "demo", "--dir", str(demo_dir), "--headless-for", "1"
    )
    _assert_install_hint(proc)
    assert not demo_dir.exists()  # nothing half-made


def test_sim_server_without_the_sim_extra_says_how_to_install_it(tmp_path: Path) -> None:
    _assert_install_hint(_without_starlette(tmp_path, "-m", "batchdash", "sim-server"))
    _assert_install_hint(_without_starlette(tmp_path, "-m", "batchdash.core.sim", "--port", "0"))


def test_the_base_install_leaves_the_simulator_stack_out() -> None:
    declared = requires("batchdash") or []
    base = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in declared if "extra ==" not in r}
    sim = {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]
        for r in declared
        if re.search(r"extra\s*==\s*['\"]sim['\"]", r)
    }
    assert "httpx" in base
    assert not base & SIM_PACKAGES
    assert sim == SIM_PACKAGES


def test_the_simulator_readme_stays_inside_the_repository() -> None:
    readme = ROOT / "core" / "sim" / "README.md"
    text = readme.read_text()
    # Absolute paths (in backticks or links) and relative ones that climb out of the repo.
    assert not re.findall(r"[`(]/(?:work|home|tmp|root|Users)/", text)
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if "://" not in target:
            assert (readme.parent / target).resolve().is_relative_to(ROOT), target
    assert "../shared" not in text
