"""The store contract: every back end of `core.db.ports` passes the same tests.

`backend` is parametrized over the back ends (SQLite, and PostgreSQL on a throwaway server: see
tests/pgserver.py). Tests open stores only through it
and talk only to the Protocols: `read`, `write` and the repositories of `Tx`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from batchdash.core.db import DbLocation
from batchdash.core.db.ports import Store
from tests.contract.backends import BACKENDS, Backend
from tests.pgserver import PgServer


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh database of each back end (a PostgreSQL one is copied from the template)."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        return Backend("postgres", DbLocation(url=url))
    return Backend(request.param, DbLocation(path=tmp_path / "batchdash.db"))


@pytest.fixture(params=BACKENDS, scope="module")
def module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """A database of each back end shared by a module's tests (built once, read many times)."""
    if request.param == "postgres":
        server: PgServer = request.getfixturevalue("pg_server")
        template = request.getfixturevalue("pg_template")
        url = server.create_database(template=template)
        yield Backend("postgres", DbLocation(url=url))
        server.drop_database(url)
        return
    folder = tmp_path_factory.mktemp(request.param)
    yield Backend(request.param, DbLocation(path=folder / "batchdash.db"))


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Store]:
    """An open async store on a fresh database."""
    opened = await backend.open()
    yield opened
    await opened.close()
