"""One SDK client per endpoint for a poll cycle, whatever the provider."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Self

from batchdash.core.endpoints import Endpoint, batch_endpoint
from batchdash.core.errors import ProviderError
from batchdash.core.models import Batch

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
