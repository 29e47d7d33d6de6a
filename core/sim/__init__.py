"""Simulator of OpenAI's Files, Batches, Chat and Embeddings APIs and Anthropic's Messages
and Message Batches APIs.

Deterministic, fast and faithful to the Batch API's real-world quirks, so tests, benchmarks
and `batchdash demo` can run without network access. See core/sim/README.md. Its web stack
(starlette, uvicorn) is the `sim` extra, so the server names below are imported on first
use: `batchdash.core.sim.requirements` stays importable without them.

    from batchdash.core.sim import SimConfig, SimServer

    with SimServer(SimConfig(speed=1000)) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="sim")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from batchdash.core.sim.config import SimConfig

if TYPE_CHECKING:
    from batchdash.core.sim.server import SimServer, create_app, main, serve

__all__ = ["SimConfig", "SimServer", "create_app", "main", "serve"]

_FROM_SERVER = frozenset({"SimServer", "create_app", "main", "serve"})


def __getattr__(name: str) -> Any:
    """The server's names, imported when first asked for (they need the `sim` extra)."""
    if name in _FROM_SERVER:
        return getattr(importlib.import_module("batchdash.core.sim.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
