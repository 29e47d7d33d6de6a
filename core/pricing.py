"""Token prices per model, for cost per job, per batch and per QA judgement.

Prices are USD per million tokens (input, output) at the synchronous rate; batch APIs
(OpenAI's Batch API, Anthropic's Message Batches) bill half. The table is a default, not
a contract: set `BATCHDASH_PRICES` (or `prices` in the config file) to a JSON file
`{"model": [input, output], ...}` to override or extend it. Dated model names
(`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`) match their family by longest prefix.
Unknown models cost None (shown as "?"), never a made-up number.
"""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

from batchdash.core.config import prices_path_setting
from batchdash.core.errors import InvalidInputError

#: Batch API discount on the synchronous price.
BATCH_DISCOUNT = 0.5

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    # Anthropic (Message Batches bill half of these too).
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-3-haiku": (0.25, 1.25),
}


class PriceFileError(InvalidInputError):
    """The BATCHDASH_PRICES file is missing or malformed."""


@cache
def price_table() -> dict[str, tuple[float, float]]:
    """Default prices merged with the user's overrides (read once per process).

    Raises PriceFileError naming the file and the problem; workers call this at start so
    a bad file stops them before any paid call.
    """
    table = dict(DEFAULT_PRICES)
    path = prices_path_setting()
    if path is None:
        return table
    try:
        data = json.loads(path.read_text())
        for model, pair in data.items():
            table[str(model)] = _price_pair(pair)
    except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise PriceFileError(
            f"BATCHDASH_PRICES={path}: expected {{model: [in, out]}}: {exc}"
        ) from exc
    return table


def _price_pair(pair: Any) -> tuple[float, float]:
    """[input, output] USD per million tokens: two finite, non-negative numbers."""
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise ValueError(f"{pair!r} is not a pair [in, out]")
    prices = (float(pair[0]), float(pair[1]))
    if not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ValueError(f"{pair!r} is not two non-negative prices")
    return prices


def model_price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a model, by exact name or longest prefix."""
    table = price_table()
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name + "-")]
    return table[max(matches, key=len)] if matches else None


def price_of(model: str, input_tokens: int, output_tokens: int, *, batch: bool) -> float | None:
    """USD for one request, or None when the model's price is unknown."""
    price = model_price(model)
    if price is None:
        return None
    cost = (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
    return cost * BATCH_DISCOUNT if batch else cost


def usd(value: float) -> str:
    """Dollars with precision that suits small LLM bills: `$1,234.50`, `$0.0042`."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
