"""One SDK client per endpoint for a poll cycle, whatever the provider."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Self

from batchdash.core.endpoints import Endpoint, batch_endpoint
from batchdash.core.errors import ProviderError
from batchdash.core.models import Batch

if TYPE_CHECKING:
    from batchdash.core.db.ports import Store
    from batchdash.core.providers.base import Reconciled

#: Opens a provider's client for an endpoint (closed when the context exits).
Opener = Callable[[Endpoint], AbstractAsyncContextManager[Any]]


class Clients:
    """One client per endpoint, opened on first use and closed together.

    Every call on a batch goes to the endpoint it was submitted to (`batch_endpoint`: its
    stored endpoint name, else the URL recorded on submit with the provider's default key).
    """

    def __init__(self, connect: Opener) -> None:
        self._connect = connect
        self._open: dict[Endpoint, Any] = {}
        self._stack = contextlib.AsyncExitStack()

    async def for_batch(self, batch: Batch) -> Any:
        """The client for this batch's endpoint."""
        endpoint = batch_endpoint(batch)
        if endpoint not in self._open:
            self._open[endpoint] = await self._stack.enter_async_context(self._connect(endpoint))
        return self._open[endpoint]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


async def require_listed(client: Any, model: str, where: str) -> None:
    """ProviderError unless the provider's model list (either SDK's `models.list()`) has it."""
    async for known in client.models.list():
        if known.id == model:
            return
    raise ProviderError(f"model {model!r} is not offered by {where}")


class ClientSession:
    """One poll cycle's clients (one per endpoint) for `poll` and `reconcile`, whatever the
    provider: it hands its own poll and reconcile functions the right client."""

    def __init__(
        self,
        clients: Clients,
        poll_batch: Callable[[Store, Any, Batch], Awaitable[bool | None]],
        reconcile: Callable[[Store, Any], Awaitable[list[Reconciled]]],
    ) -> None:
        self.clients = clients
        self._poll_batch = poll_batch
        self._reconcile = reconcile

    async def poll(self, db: Store, batch: Batch) -> bool | None:
        """Retrieve a due batch and stream its results in once it has ended."""
        return await self._poll_batch(db, await self.clients.for_batch(batch), batch)

    async def reconcile(self, db: Store) -> list[Reconciled]:
        """Finish this provider's submissions whose submitter died."""
        return await self._reconcile(db, self.clients)
