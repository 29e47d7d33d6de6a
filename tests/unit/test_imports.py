"""The headless paths stay light: no textual in core or `--once`, no openai unless polling."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import batchdash.core
from batchdash.tui.cli import COMMANDS
from tests.conftest import ROOT, cli_env


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_core_and_the_once_path_never_import_textual() -> None:
    names = [m.name for m in pkgutil.walk_packages(batchdash.core.__path__, "batchdash.core.")]
    imports = "\n".join(
        f"import {name}" for name in [*names, "batchdash.tui.once", "batchdash.tui.cli"]
    )
    loaded = _modules_after(imports)
    assert "batchdash.core.snapshot" in loaded and "batchdash.core.filters" in loaded
    assert "textual" not in loaded


def test_once_run_imports_neither_textual_nor_openai(tmp_path: object) -> None:
    code = (
        "import io, contextlib\n"
        "from batchdash.tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['--db', {str(tmp_path)!r} + '/x.db', '--once', '--json'])"
    )
    loaded = _modules_after(code)
    assert "batchdash.tui.once" in loaded
    assert "textual" not in loaded
    assert "openai" not in loaded
    # Lazy subcommands: no command module is loaded for `--once`.
    commands = {f"batchdash.tui.cli.{where.split(':')[0]}" for where in COMMANDS.values()}
    assert len(commands) > 5
    assert not loaded & commands
