"""Anthropic plumbing shared by job calls, judge calls and the Message Batches client.

Clients are built for an endpoint (`core.endpoints`: a named one, or the unnamed default
from ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY; keys are never stored); this module also
describes SDK errors in one line, decides what is worth retrying and reads token usage.
`anthropic` is imported inside the functions, so importing this module is cheap (and works
without the optional extra installed).
"""

from __future__ import annotations

from typing import Any

from batchdash.core.endpoints import Endpoint, default_endpoint
from batchdash.core.errors import BatchdashError, ProviderError
from batchdash.core.retry import retry_after, retryable_status

#: Seconds one call may take (a big inline create, a results stream) before it is abandoned.
TIMEOUT = 600.0


def new_client(*, retries: int, endpoint: Endpoint | None = None, timeout: float = TIMEOUT) -> Any:
    """An AsyncAnthropic for `endpoint` (default: the unnamed one, ANTHROPIC_*) with its key;
    MissingKeyError without one, ProviderError without the `anthropic` extra. Close it
    with `await client.close()`."""
    chosen = endpoint or default_endpoint("anthropic")
    key = chosen.key()
    try:
        import anthropic
    except ImportError as exc:
        raise ProviderError(
            "the anthropic provider needs its SDK: pip install 'batchdash[anthropic]'"
        ) from exc
    return anthropic.AsyncAnthropic(
        base_url=chosen.base_url, api_key=key, max_retries=retries, timeout=timeout
    )


def owns(exc: BaseException) -> bool:
    """True for an exception of the anthropic SDK (checked without importing it)."""
    return type(exc).__module__.split(".")[0] == "anthropic"


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed call; None for a network error or anything else."""
    import anthropic

    return exc.status_code if isinstance(exc, anthropic.APIStatusError) else None


def is_retryable(exc: BaseException) -> bool:
    """True for a failed call worth repeating: 408/409/429/5xx/529, the network, a timeout."""
    import anthropic

    status = status_of(exc)
    if status is not None:
        return retryable_status(status)
    return isinstance(exc, (anthropic.APIConnectionError, OSError))


def wait_hint(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait before trying again (retry-after), if it said."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        return retry_after(exc.response.headers)
    return None


def error_type(exc: BaseException) -> str | None:
    """The provider's error type (`rate_limit_error`, `overloaded_error`...) if it gave one."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def describe(exc: BaseException) -> str:
    """A one-line description of a provider error (never includes the key)."""
    if isinstance(exc, BatchdashError):
        return str(exc)
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        kind = error_type(exc)
        text = message if isinstance(message, str) and message else exc.message
        return f"HTTP {exc.status_code}: {kind + ': ' if kind else ''}{text}"
    if isinstance(exc, anthropic.APIConnectionError):
        return f"network: {exc}"
    return str(exc) or type(exc).__name__


def message_text(message: Any) -> str | None:
    """The text blocks of a Messages API reply (a dict), joined; None when it has none."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return None
    texts = [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return "".join(texts) if texts else None
