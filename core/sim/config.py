"""Configuration of the OpenAI-compatible simulator.

`SimConfig` is re-exported by `core.sim.server` (its documented home); it lives in its own
module so that the store and the HTTP layer can both import it without a cycle.

Durations are in *simulated* seconds: the server divides them by `speed` to get wall-clock
seconds, so `speed=1000` turns the ~1 s validating phase into ~1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimConfig:
    """Knobs of one simulator instance; every field has a default suited to interactive use."""

    speed: float = 1.0
    """Time multiplier: simulated seconds per wall-clock second (> 0)."""

    fault_rate: float = 0.0
    """Probability (0..1) that any `/v1/...` request answers 429, 500 or 503 instead."""

    lost_response_rate: float = 0.0
    """Probability (0..1) that an upload or a batch create is carried out but answered 500,
    as when the response is lost on the way: the file or batch exists all the same."""

    api_key: str | None = None
    """When set, `/v1/...` requests must carry `Authorization: Bearer <api_key>`; any other
    key gets OpenAI's 401 `invalid_api_key`. None accepts every key."""

    seed: int = 0
    """Seed of every random choice: faults, output-line shuffling, deterministic ids."""

    data_dir: Path | None = None
    """Where uploaded and generated files live; `None` means a private temp dir."""

    token_limit: int | None = None
    """Enqueued-token limit per batch; a bigger input file fails `token_limit_exceeded`."""

    lines_per_second: float = 2000.0
    """Processing rate of `in_progress` batches, in lines per simulated second."""

    validating_s: float = 1.0
    """How long a batch stays `validating`."""

    finalizing_s: float = 1.0
    """How long a batch stays `finalizing` (normally)."""

    stall_finalizing_s: float = 600.0
    """How long `finalizing` lasts with `metadata.sim_quirk = "stall_finalizing"`."""

    cancel_s: float = 1.0
    """How long a batch stays `cancelling` (normally)."""

    slow_cancel_s: float = 30.0
    """How long `cancelling` lasts with `metadata.sim_quirk = "slow_cancel"`."""

    expire_stall_s: float = 1.0
    """With `sim_quirk = "expire"`: time stuck at the halfway point before `expired`."""

    max_requests: int = 50_000
    """Most request lines an input file may hold (`too_many_requests` above it)."""

    retry_after_ms: int | None = 10
    """Value of the `retry-after-ms` header sent with every simulated 429/5xx (next to
    `retry-after: 0`). The openai SDK prefers it over its own 0.5-8 s back-off, which keeps
    fault-injection tests fast. `None` sends only `retry-after: 0`, like OpenAI."""

    anthropic_max_requests: int = 100_000
    """Most requests one Anthropic message batch may hold (400 above it)."""

    anthropic_max_bytes: int = 256 * 1024 * 1024
    """Largest Anthropic batch-create body (413 `request_too_large` above it)."""

    embedding_dim: int = 8
    """Length of embedding vectors when the request gives no `dimensions`."""

    deterministic_ids: bool = True
    """Derive file/batch ids from `seed` and a counter (reproducible runs). Set False when
    several runs share one client database, so ids never collide across runs."""

    def __post_init__(self) -> None:
        """Reject values that would make the timeline or the fault draw meaningless."""
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        for name in ("fault_rate", "lost_response_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if not self.lines_per_second > 0:
            raise ValueError(f"lines_per_second must be > 0, got {self.lines_per_second}")
        if self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {self.max_requests}")
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir)
