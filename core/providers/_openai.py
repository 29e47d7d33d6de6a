"""OpenAI plumbing shared by job calls, judge calls and the Batch API client.

One place builds clients, decides which HTTP statuses are worth retrying, describes SDK
errors in one line and reads token usage. `openai` is imported inside the functions (it
costs ~0.7 s), so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

from batchdash.core.endpoints import Endpoint, default_endpoint
from batchdash.core.errors import BatchdashError
from batchdash.core.retry import retryable_status


def new_client(
    *, retries: int, endpoint: Endpoint | None = None, timeout: float | None = None
) -> Any:
    """An AsyncOpenAI for `endpoint` (default: the unnamed OpenAI one) with its key;
    MissingKeyError without one. Close it with `await client.close()`."""
    chosen = endpoint or default_endpoint("openai")
    key = chosen.key()
    import openai  # deferred: importing openai costs ~0.7 s

    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    return openai.AsyncOpenAI(base_url=chosen.base_url, api_key=key, max_retries=retries, **options)


def is_retryable(exc: BaseException) -> bool:
    """True for a failed call worth repeating: a retryable status, the network, a timeout."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return retryable_status(exc.status_code)
    return isinstance(exc, (openai.APIConnectionError, OSError))


def describe(exc: BaseException) -> str:
    """A one-line description of a provider error (never includes the key)."""
    if isinstance(exc, BatchdashError):
        return str(exc)  # ours (a missing key, a refused batch): no need to import openai
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APIConnectionError):
        return f"network: {exc}"
    return str(exc) or type(exc).__name__


def usage_tokens(body: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens of a response body; None where it does not say.

    Chat completions name them prompt/completion tokens, the Responses API input/output
    tokens. A usage without any output count (embeddings) produced no output: 0.
    """
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None, None
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens"))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens", 0))
    return _count(tokens_in), _count(tokens_out)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
