"""The store's shape: domain code talks to `core.db.ports` only, SQLite stays in
`core/db/sqlite/`, its migrations ship as numbered .sql files, aiosqlite is gone."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from batchdash.core.db import SCHEMA_VERSION
from batchdash.core.errors import BatchdashError, DatabaseError, NotFoundError, StoreError
from batchdash.core.models import BatchState, ItemOutcome, JobStatus, WorkerState
from tests.conftest import ROOT, cli_env

SQLITE = ROOT / "core" / "db" / "sqlite"
#: SQL only SQLite speaks; a PostgreSQL store would have to rewrite any of it.
SQLITE_ONLY = re.compile(r"INDEXED BY|INSERT OR |PRAGMA|temp\.|json_(extract|valid|each)", re.I)
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA)\b")


def _domain_modules() -> list[Path]:
    return [
        path
        for top in ("core", "tui", "screenshots")
        for path in sorted((ROOT / top).rglob("*.py"))
        if SQLITE not in path.parents
    ]


def test_domain_code_never_imports_sqlite3() -> None:
    offenders = []
    for path in _domain_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "sqlite3"]
    assert offenders == []


def test_sql_and_sqlite_dialect_stay_in_the_sqlite_back_end() -> None:
    offenders = []
    for path in _domain_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if SQL.search(text) and SQLITE_ONLY.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_migrations_ship_as_numbered_sql_files_one_per_schema_version() -> None:
    folder = resources.files("batchdash.core.db.sqlite").joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    assert [int(n.split("_", 1)[0]) for n in names] == list(range(1, SCHEMA_VERSION + 1))
    assert SCHEMA_VERSION >= 12  # every migration of the single-module store is there
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "db/sqlite/migrations/*.sql" in config["package-data"]["batchdash.core"]


def test_the_store_owns_its_thread_without_aiosqlite(db_path: Path) -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.startswith("aiosqlite")]
    probe = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from batchdash.core.db import open_store\n"
        "async def main():\n"
        f"    db = await open_store(Path({str(db_path)!r}))\n"
        "    await db.write(lambda tx: tx.queues.ensure_queue('q', 1.0))\n"
        "    print([q.name for q in await db.read(lambda tx: tx.queues.list_queues())])\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
        "print('aiosqlite' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert proc.stdout.split() == ["['q']", "False"], proc.stderr


def test_store_errors_share_the_one_batchdash_base() -> None:
    for error in (StoreError, NotFoundError, DatabaseError):
        assert issubclass(error, BatchdashError)


def test_no_store_module_is_over_500_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in sorted((ROOT / "core" / "db").rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 500
    ]
    assert long == []


#: Every state word of the enums in models.py, quoted as SQL writes it.
STATE_LITERAL = re.compile(
    r"'({})'".format(
        "|".join(
            sorted(
                {
                    m.value
                    for kind in (JobStatus, BatchState, ItemOutcome, WorkerState)
                    for m in kind
                }
            )
        )
    )
)


def test_sqlite_sql_takes_states_from_the_enums() -> None:
    found = [
        f"{path.name}:{node.lineno}: {STATE_LITERAL.search(node.value).group()}"  # type: ignore[union-attr]
        for path in sorted(SQLITE.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and STATE_LITERAL.search(node.value)
    ]
    assert not found, "state literals in SQL; use the enum-built constants of rows.py"
