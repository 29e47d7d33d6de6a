"""Jittered exponential backoff: the one delay rule of every retry loop in batchdash."""

from __future__ import annotations

import random


def backoff(
    attempt: int, base: float, cap: float, *, jitter: float = 0.5, factor: float = 2.0
) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): `base * factor**attempt`,
    capped at `cap`, spread by ±`jitter` (a fraction) so that clients failing together do
    not retry in lockstep."""
    raw = min(cap, base * factor ** max(0, attempt))
    return float(raw * (1 + jitter * (2 * random.random() - 1)))
