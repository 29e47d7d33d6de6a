"""Retry rules shared by every provider: which HTTP statuses mean "later", how long to wait.

`backoff` is the one delay rule of every retry loop in batchdash; `retry_after` reads a
provider's own wish from its response headers, which overrides the backoff when present.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

#: Statuses that mean "later", not "no": timeout, conflict, rate limit (5xx, 529 included,
#: are transient too).
RETRY_LATER = frozenset({408, 409, 429})
#: Seconds a retry-after may ask for before it is capped (a bad header must not stall us).
MAX_RETRY_AFTER = 300.0


def backoff(
    attempt: int, base: float, cap: float, *, jitter: float = 0.5, factor: float = 2.0
) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): `base * factor**attempt`,
    capped at `cap`, spread by ±`jitter` (a fraction) so that clients failing together do
    not retry in lockstep."""
    raw = min(cap, base * factor ** max(0, attempt))
    return float(raw * (1 + jitter * (2 * random.random() - 1)))


def retryable_status(status: int) -> bool:
    """True for an HTTP status a later attempt may get past (408/409/429 and 5xx)."""
    return status in RETRY_LATER or status >= 500


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms` or `retry-after`), if any."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return min(MAX_RETRY_AFTER, max(0.0, float(value) * scale))
        except ValueError:
            continue
    return None
