"""The store contract: every back end of `core.db.ports` passes the same tests.

`backend` is parametrized over the back ends (SQLite only for now; a PostgreSQL store is one
more entry in BACKENDS and one more branch in `Backend`). Tests open stores only through it
and talk only to the Protocols: `read`, `write` and the repositories of `Tx`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchdash.core.db.ports import Store
from tests.contract.backends import BACKENDS, Backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh database of each back end."""
    return Backend(request.param, tmp_path)


@pytest.fixture(params=BACKENDS, scope="module")
def module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Backend:
    """A database of each back end shared by a module's tests (built once, read many times)."""
    return Backend(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Store]:
    """An open async store on a fresh database."""
    opened = await backend.open()
    yield opened
    await opened.close()
