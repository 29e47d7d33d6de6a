"""One SDK client per endpoint for a poll cycle, whatever the provider."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Self

from batchdash.core.models import Batch

#: Opens a provider's client for a base URL (closed when the context exits).
Opener = Callable[[str], AbstractAsyncContextManager[Any]]


class Clients:
    """One client per endpoint, opened on first use and closed together.

    Every call on a batch goes to the endpoint it was submitted to (`Batch.base_url`);
    batches recorded before endpoints were stored use `default_url`.
    """

    def __init__(self, connect: Opener, default_url: str) -> None:
        self.default_url = default_url
        self._connect = connect
        self._open: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()

    async def for_batch(self, batch: Batch) -> Any:
        """The client for this batch's endpoint."""
        url = batch.base_url or self.default_url
        if url not in self._open:
            self._open[url] = await self._stack.enter_async_context(self._connect(url))
        return self._open[url]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
