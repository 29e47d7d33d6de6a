"""OpenAI-compatible simulator of the Files, Batches, Chat and Embeddings APIs.

Deterministic, fast and faithful to the Batch API's real-world quirks, so tests, benchmarks
and `batchdash demo` can run without network access. See core/sim/README.md.

    from batchdash.core.sim import SimConfig, SimServer

    with SimServer(SimConfig(speed=1000)) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="sim")
"""

from __future__ import annotations

from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.server import SimServer, create_app, main, serve

__all__ = ["SimConfig", "SimServer", "create_app", "main", "serve"]
