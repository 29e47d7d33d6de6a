"""Storage: the ports (`ports.py`) domain code talks to, and the back end that opens them.

`open_store` / `open_sync_store` open the SQLite back end (`core/db/sqlite/`), the only one
so far; callers see only the `Store` and `SyncStore` Protocols.
"""

from __future__ import annotations

from pathlib import Path

from batchdash.core.db.ports import Store, SyncStore
from batchdash.core.db.sqlite.connection import SCHEMA_VERSION, default_db_path, require_database
from batchdash.core.db.sqlite.store import SqliteStore, SqliteSyncStore

__all__ = [
    "SCHEMA_VERSION",
    "default_db_path",
    "open_store",
    "open_sync_store",
    "require_database",
]


async def open_store(path: Path, *, readonly: bool = False, create: bool = True) -> Store:
    """Open (and migrate, unless read-only) the database at `path` for async use.

    `create=False` refuses a missing file (MissingDatabaseError) instead of making one;
    a file that is not a batchdash database is a one-line StoreError, not a traceback.
    """
    return await SqliteStore.open(path, readonly=readonly, create=create)


def open_sync_store(path: Path, *, readonly: bool = False, create: bool = True) -> SyncStore:
    """Open the database at `path` for synchronous use (see `open_store`)."""
    return SqliteSyncStore.open(path, readonly=readonly, create=create)
