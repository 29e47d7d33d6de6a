"""Storage: the ports (`ports.py`) domain code talks to, and the back ends that open them.

`open_store` / `open_sync_store` open the database a `DbLocation` names: a SQLite file
(`core/db/sqlite/`, the embedded default) or a PostgreSQL server (`core/db/postgres/`, the
`postgres` extra, imported only when used); callers see only the `Store` and `SyncStore`
Protocols.
"""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db.location import DbLocation, default_location, parse_location
from batchdash.core.db.ports import Store, SyncStore
from batchdash.core.db.sqlite.connection import SCHEMA_VERSION, require_database
from batchdash.core.db.sqlite.store import SqliteStore, SqliteSyncStore

__all__ = [
    "SCHEMA_VERSION",
    "DbLocation",
    "default_location",
    "open_store",
    "open_sync_store",
    "parse_location",
    "require_database",
]


def _located(where: DbLocation | Path) -> DbLocation:
    return where if isinstance(where, DbLocation) else DbLocation(path=where)


async def open_store(
    where: DbLocation | Path, *, readonly: bool = False, create: bool = True
) -> Store:
    """Open (and migrate, unless read-only) the database at `where` for async use.

    `create=False` refuses a missing database (MissingDatabaseError) instead of making one;
    a file that is not a batchdash database is a one-line StoreError, not a traceback.
    """
    location = _located(where)
    if location.url is not None:
        from batchdash.core.db.postgres.store import PgStore

        return await PgStore.open(location, readonly=readonly, create=create)
    assert location.path is not None
    return await SqliteStore.open(location.path, readonly=readonly, create=create)


def open_sync_store(
    where: DbLocation | Path, *, readonly: bool = False, create: bool = True
) -> SyncStore:
    """Open the database at `where` for synchronous use (see `open_store`)."""
    location = _located(where)
    if location.url is not None:
        from batchdash.core.db.postgres.store import PgSyncStore

        return PgSyncStore.open(location, readonly=readonly, create=create)
    assert location.path is not None
    return SqliteSyncStore.open(location.path, readonly=readonly, create=create)
