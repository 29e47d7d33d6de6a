"""What a file of requests will cost, estimated before anything is created or uploaded.

Per model: the requests, their expected input tokens and output-token bound
(`core/estimate.py`), and a cost range at the batch or the real-time price — the minimum
pays the input alone, the maximum the input plus every output token the caps allow. A
model without a known price says so (never a made-up number), and a limit cannot be
checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdash.core.estimate import estimate_request_tokens, request_model
from batchdash.core.inputs import read_job_file
from batchdash.core.pricing import price_of, usd


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    """The requests of one model (None: the requests name none) and what they may cost."""

    model: str | None
    requests: int
    input_tokens: int
    output_bound: int
    min_usd: float | None  # input tokens only; None when the price is unknown
    max_usd: float | None  # input plus the output bound


@dataclass(frozen=True, slots=True)
class FileEstimate:
    """Every model's estimate, at the batch (`batch=True`) or the real-time price."""

    models: list[ModelEstimate]
    batch: bool

    @property
    def unknown(self) -> list[str]:
        """Models without a price (`(no model)` for requests that name none)."""
        return [m.model or "(no model)" for m in self.models if m.max_usd is None]

    @property
    def max_usd(self) -> float:
        """The upper estimate over the models whose price is known."""
        return sum(m.max_usd or 0.0 for m in self.models)

    @property
    def min_usd(self) -> float:
        """The lower estimate over the models whose price is known."""
        return sum(m.min_usd or 0.0 for m in self.models)


def estimate_payloads(payloads: Iterable[Any], *, batch: bool) -> FileEstimate:
    """Estimate the requests (job payloads) per model, in order of first appearance."""
    totals: dict[str | None, list[int]] = {}
    for payload in payloads:
        key = request_model(payload) or None  # None: the request names no model
        tokens_in, bound = estimate_request_tokens(payload)
        row = totals.setdefault(key, [0, 0, 0])
        row[0] += 1
        row[1] += tokens_in
        row[2] += bound
    return FileEstimate([_priced(m, *row, batch=batch) for m, row in totals.items()], batch)


def _priced(
    model: str | None, requests: int, tokens_in: int, bound: int, *, batch: bool
) -> ModelEstimate:
    low = None if model is None else price_of(model, tokens_in, 0, batch=batch)
    high = None if model is None else price_of(model, tokens_in, bound, batch=batch)
    return ModelEstimate(model, requests, tokens_in, bound, low, high)


def over_limit(estimate: FileEstimate, limit: float) -> str | None:
    """Why the file may not go under a spending `limit` (None: it fits)."""
    if estimate.unknown:
        return f"unknown price for {', '.join(estimate.unknown)}: cannot check the limit"
    if estimate.max_usd > limit:
        return f"upper estimate {usd(estimate.max_usd)} exceeds the limit {usd(limit)}"
    return None


def estimate_lines(estimate: FileEstimate) -> list[str]:
    """The estimate as lines for a terminal: one per model, then the total."""
    price = "batch price" if estimate.batch else "real-time price"
    lines = [f"estimate at the {price} (nothing created):"]
    for m in estimate.models:
        cost = (
            "unknown price" if m.max_usd is None else f"{usd(m.min_usd or 0.0)} to {usd(m.max_usd)}"
        )
        lines.append(
            f"  {m.model or '(no model)'}: {m.requests:,} request{'s' if m.requests != 1 else ''}, "
            f"{m.input_tokens:,} input "
            f"tokens, output bound {m.output_bound:,} tokens, {cost}"
        )
    total = f"{usd(estimate.min_usd)} to {usd(estimate.max_usd)}"
    if estimate.unknown:
        total += f" (plus {', '.join(estimate.unknown)}: unknown price)"
    lines.append(f"  total: {total}")
    return lines


def estimate_file(path: Path, *, batch: bool) -> FileEstimate:
    """Estimate a job or request file (read whole; InputError lists its bad lines)."""
    return estimate_payloads((job.payload for job in read_job_file(path).jobs), batch=batch)
