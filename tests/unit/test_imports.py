"""The headless paths stay light: no textual in core or `--once`, no openai unless polling."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import batchdash.core
from batchdash.core.db import open_sync_store
from batchdash.tui.cli import COMMANDS
from batchdash.tui.cli.options import once_args
from batchdash.tui.cli.root import root
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
    assert "click" not in loaded  # a plain --once line is parsed from the option table
    # Lazy subcommands: no command module is loaded for `--once`.
    commands = {f"batchdash.tui.cli.{where.split(':')[0]}" for where in COMMANDS.values()}
    assert len(commands) > 5
    assert not loaded & commands


#: What a `--once` picture never needs: the dashboard, the command line's click, provider
#: clients, psycopg's pool, and the domain modules its read model does not read.
NOT_FOR_ONCE = {
    "textual",
    "click",
    "httpx",
    "openai",
    "anthropic",
    "psycopg_pool",
    *(
        f"batchdash.core.{name}"
        for name in (
            "ratelimit",
            "limiter",
            "estimate",
            "notices",
            "sync",
            "stage_records",
            "batch_records",
        )
    ),
}


def _once_loads(db: str) -> set[str]:
    """The modules a plain `batchdash --once --db DB` (exit 0) has loaded when it is done."""
    code = (
        "import io, contextlib\n"
        "from batchdash.tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['--db', {db!r}, '--once']) == 0\n"
    )
    return _modules_after(code)


def test_once_on_a_database_loads_only_what_it_reads(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    open_sync_store(db).close()
    loaded = _once_loads(str(db))
    assert "batchdash.core.db.sqlite.stats" in loaded and not loaded & NOT_FOR_ONCE
    # Repositories load on first use, migrations only when migrating, threads when async.
    unused = {"jobs", "job_pages", "items", "events"}
    assert not loaded & {f"batchdash.core.db.sqlite.{name}" for name in unused}
    assert not loaded & {"importlib.resources", "concurrent.futures", "hashlib", "random"}


ONCE_LINES = [
    ["--once"],
    ["--db", "x.db", "--once", "--json"],
    ["--once", "--db=x.db", "--section", "queues", "--section=qa", "--poll"],
    ["--read-only", "--refresh", "2.5", "--once", "--db", "a=b.db", "--db", "y.db"],
]


@pytest.mark.parametrize("argv", ONCE_LINES)
def test_once_fast_path_reads_the_line_as_click_does(argv: list[str]) -> None:
    for environ in ({}, {"BATCHDASH_DB": "env.db"}):
        with mock.patch.dict(os.environ, environ, clear=True):
            fast = once_args(argv, os.environ)
            with root.make_context("batchdash", list(argv)) as ctx:
                parsed = root.invoke(ctx)
        assert fast == parsed.args


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--db", "x.db"],
        ["--once", "--section", "nope"],
        ["--once", "--refresh", "soon"],
        ["--once", "--db", ""],
        ["--once", "--db", "--json"],
        ["--once", "--json=1"],
        ["--once", "--help"],
        ["--once", "--version"],
        ["--once", "jobs"],
        ["--onc"],
    ],
)
def test_other_lines_are_left_to_click(argv: list[str]) -> None:
    assert once_args(argv, {}) is None


def test_once_on_postgresql_loads_only_what_it_reads(pg_url: str) -> None:
    loaded = _once_loads(pg_url)
    assert "batchdash.core.db.postgres.stats" in loaded and not loaded & NOT_FOR_ONCE
    assert "batchdash.core.db.sqlite.stats" not in loaded
