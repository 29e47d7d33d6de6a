"""Remote batch providers behind one interface (`base.BatchProvider`), found by name.

A batch's stored `provider` column picks its module here; a provider module is imported
only when a batch (or a command) needs it, and exposes its object as `PROVIDER`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from batchdash.core.errors import UnknownProviderError

if TYPE_CHECKING:
    from batchdash.core.models import Batch
    from batchdash.core.providers.base import BatchProvider

#: The provider of commands that do not name one.
DEFAULT_PROVIDER = "openai"

#: Provider name (as stored in `batches.provider`) → the module implementing it.
MODULES = {
    "openai": "batchdash.core.providers.openai_batch",
    "anthropic": "batchdash.core.providers.anthropic_batch",
}


def get_provider(name: str) -> BatchProvider:
    """The provider called `name`; UnknownProviderError for a name no module implements."""
    module = MODULES.get(name)
    if module is None:
        known = ", ".join(sorted(MODULES))
        raise UnknownProviderError(f"unknown batch provider {name!r} (known: {known})")
    provider: BatchProvider = importlib.import_module(module).PROVIDER
    return provider


def provider_for(batch: Batch) -> BatchProvider:
    """The provider a batch was submitted to (its stored `provider`)."""
    try:
        return get_provider(batch.provider)
    except UnknownProviderError as exc:
        raise UnknownProviderError(f"batch {batch.id}: {exc}") from None
