"""The store back ends the contract suite runs on, and helpers its tests share."""

from __future__ import annotations

from batchdash.core.db import DbLocation, open_store, open_sync_store
from batchdash.core.db.ports import Store, SyncStore
from batchdash.core.models import NewJob

BACKENDS = ["sqlite", "postgres"]


class Backend:
    """Opens stores of one back end on one fresh, empty database."""

    def __init__(self, name: str, where: DbLocation) -> None:
        self.name = name
        self.where = where

    async def open(self) -> Store:
        """A new async store on this backend's database."""
        return await open_store(self.where)

    def open_sync(self) -> SyncStore:
        """A new sync store on this backend's database."""
        return open_sync_store(self.where)


def jobs(n: int, prefix: str = "k", **kw: object) -> list[NewJob]:
    """`n` new jobs with keys prefix0…"""
    return [NewJob(key=f"{prefix}{i}", payload={"i": i}, **kw) for i in range(n)]  # type: ignore[arg-type]


def counts(backend: Backend) -> dict[tuple[str, str], int]:
    """Jobs per (queue, status), as the queue listing reports them."""
    with backend.open_sync() as s:
        queues = s.read(lambda tx: tx.queues.list_queues())
    return {(q.name, st): n for q in queues for st, n in q.counts.items()}


def events(backend: Backend, job_id: int) -> list[str]:
    """The kinds of a job's events, oldest first."""
    with backend.open_sync() as s:
        return [e.kind for e in s.read(lambda tx: tx.events.list_events(job_id))]
