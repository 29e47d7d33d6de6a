"""Remote batches go to the provider their row names; an unknown name is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchdash.core import providers, remote, sync
from batchdash.core.actor import Actor
from batchdash.core.batch_records import NewBatch
from batchdash.core.db import open_store, open_sync_store
from batchdash.core.db.ports import Store
from batchdash.core.errors import UnknownProviderError
from tests.conftest import cli


class FakeProvider:
    """A second provider, as the Anthropic one will be: it only records what it is asked."""

    name = "fake"

    def __init__(self) -> None:
        self.cancelled: list[int] = []
        self.resubmitted: list[int] = []

    async def cancel(self, db: Store, batch_id: int, actor: Actor | None = None) -> None:
        self.cancelled.append(batch_id)

    async def resubmit(
        self,
        db: Store,
        batch_id: int,
        *,
        include_permanent: bool = False,
        actor: Actor | None = None,
    ) -> int:
        self.resubmitted.append(batch_id)
        return 0


#: Found by the registry as `<this module>.PROVIDER`, like a real provider module.
PROVIDER = FakeProvider()


def _add(db_path: Path, provider: str) -> int:
    with open_sync_store(db_path) as db:
        new = NewBatch("q", "/v1/chat/completions", "m", remote_id=f"r-{provider}",
                             state="running", provider=provider)  # fmt: skip
        return db.write(lambda tx: tx.batches.add_batch(new, 1.0))


async def test_registry_dispatches_by_the_stored_provider(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(providers.MODULES, "fake", __name__)
    ours, theirs = _add(db_path, "openai"), _add(db_path, "fake")
    db = await open_store(db_path)
    try:
        rows = {b.id: b for b in await db.read(lambda tx: tx.batches.list_batches())}
        assert providers.provider_for(rows[ours]).name == "openai"
        assert providers.provider_for(rows[theirs]) is PROVIDER
        await remote.cancel_batch(db, theirs)
        await remote.resubmit_batch(db, theirs)
    finally:
        await db.close()
    assert PROVIDER.cancelled == PROVIDER.resubmitted == [theirs]


async def test_an_unknown_provider_is_refused_with_a_clear_error(db_path: Path) -> None:
    batch_id = _add(db_path, "mystery")
    db = await open_store(db_path)
    try:
        with pytest.raises(UnknownProviderError) as info:
            await remote.cancel_batch(db, batch_id)
        report = await sync.run_cycle(db)
        batch = await db.read(lambda tx: tx.batches.get_batch(batch_id))
    finally:
        await db.close()
    unknown = "unknown batch provider 'mystery' (known: anthropic, openai)"
    message = f"batch {batch_id}: {unknown}"
    assert str(info.value) == message
    assert report.blocked == {batch_id: f"batch {batch_id} cannot be polled: {unknown}"}
    assert batch.poll_error == unknown
    result = cli("batches", "cancel", str(batch_id), "--db", str(db_path), check=False)
    assert (result.returncode, result.stderr) == (2, f"batchdash: error: {message}\n")
