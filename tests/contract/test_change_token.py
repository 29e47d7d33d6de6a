"""The store's change token: the same while nothing is written, different after any write,
whether this store or another process made it (the dashboard skips reads by it). On
PostgreSQL it is the server's WAL position, which other databases move too: there it may
also change without a write here, which costs only a read."""

from __future__ import annotations

from batchdash.core.db.ports import Store
from tests.contract.backends import Backend, jobs


async def test_the_token_moves_with_every_write_and_only_then(db: Store, backend: Backend) -> None:
    first = await db.change_token()
    assert first is not None
    await db.read(lambda tx: tx.jobs.list_jobs())
    if backend.name == "sqlite":  # PostgreSQL's WAL also moves with other databases' writes
        assert await db.change_token() == first  # reads leave it
    await db.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(1), 1.0, None))
    own = await db.change_token()
    assert own != first
    with backend.open_sync() as other:  # another connection, as another process would be
        other.write(lambda tx: tx.jobs.enqueue("q", "noop", jobs(1, "o"), 1.0, None))
    assert await db.change_token() != own
