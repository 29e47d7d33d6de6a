"""A throwaway PostgreSQL server for the tests and benchmarks, from the installed binaries.

`PgServer.start()` runs `initdb` and `pg_ctl` into a temporary folder (unix socket only,
`fsync=off`: the data dies with the run); as root, both run as the `postgres` user, which
PostgreSQL requires. `BATCHDASH_TEST_PG_URL` points at an existing server instead (its
user must be allowed to create databases). Each test gets a fresh database cloned from a
template migrated once, so a test costs one `CREATE DATABASE … TEMPLATE`, not a migration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

#: Where Debian puts the server binaries when they are not on PATH.
_DEBIAN_BIN = Path("/usr/lib/postgresql")


def server_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`, or None when PostgreSQL is not installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    if _DEBIAN_BIN.is_dir():
        for version in sorted(_DEBIAN_BIN.iterdir(), reverse=True):
            if (version / "bin" / "pg_ctl").exists():
                return version / "bin"
    return None


def _as_postgres(argv: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root (the server refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class PgServer:
    """One running server (ours or `BATCHDASH_TEST_PG_URL`'s) that hands out databases."""

    def __init__(self, base_url: str, folder: Path | None) -> None:
        self.base_url = base_url
        self._folder = folder

    @classmethod
    def start(cls) -> PgServer:
        """Start a private server (or use BATCHDASH_TEST_PG_URL); RuntimeError if impossible."""
        existing = os.environ.get("BATCHDASH_TEST_PG_URL")
        if existing:
            return cls(existing, None)
        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        folder = Path(tempfile.mkdtemp(prefix="batchdash-pg-"))
        folder.chmod(0o755)
        data = folder / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        run = _runner(folder)
        run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
             "--no-sync", "-E", "UTF8", "--locale", "C"])
        options = f"-k {folder} -c listen_addresses='' -c fsync=off -c synchronous_commit=off " \
            "-c full_page_writes=off -c max_connections=200"
        run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
             "-l", str(folder / "server.log"), "start"])
        return cls(f"postgresql://postgres@/postgres?host={folder}", folder)

    def url(self, dbname: str) -> str:
        """The URL of database `dbname` on this server."""
        return _with_dbname(self.base_url, dbname)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (a copy of `template` when given); returns its URL."""
        import psycopg

        name = f"bd_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database` (its connections are cut first)."""
        import psycopg

        name = url.split("?", 1)[0].rsplit("/", 1)[-1]
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop and delete our private server (an external one is left alone)."""
        if self._folder is None:
            return
        binaries = server_binaries()
        if binaries is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                _runner(self._folder)(
                    [str(binaries / "pg_ctl"), "-D", str(self._folder / "data"), "-m",
                     "immediate", "-w", "stop"]
                )
        shutil.rmtree(self._folder, ignore_errors=True)


def _runner(folder: Path):  # type: ignore[no-untyped-def]
    def run(argv: list[str]) -> None:
        result = subprocess.run(_as_postgres(argv), capture_output=True, text=True, cwd=folder)
        if result.returncode != 0:
            log = folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stderr.strip()}\n{tail}")

    return run


def _with_dbname(url: str, dbname: str) -> str:
    """`url` with its database name replaced (query string kept)."""
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{dbname}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """A server for the duration of the block."""
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()
