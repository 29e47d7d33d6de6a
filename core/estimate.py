"""How many tokens a request will take, known before sending it (no tokenizer needed).

`estimate_request_tokens(payload)` returns `(input, output_bound)`:

* **input** ≈ characters / 4 of the request's text parts: message contents (strings, or the
  `text` of content parts), `system`, `prompt`, `input`/`instructions` (Responses and
  embeddings). Rounded up, at least 1. English text runs close to 4 characters a token;
  the estimate is corrected from the response's usage after the call.
* **output bound**: the request's `max_completion_tokens`, `max_output_tokens` or
  `max_tokens`; without one, `DEFAULT_OUTPUT_TOKENS` (embeddings: 0).

It reads every shape batchdash runs: a batch-style line `{url, body}`, Anthropic's
`{"params": {...}}` (a Message Batches line) or the parameters themselves, and a plain
payload dict. `request_model(payload)` names the model such a request asks for ('' if none);
`booking_estimate(payload)` gives both at once, as a rate limit books them.
"""

from __future__ import annotations

from typing import Any

#: Characters per token of the input estimate.
CHARS_PER_TOKEN = 4
#: Output bound of a request that sets no max_tokens: what rate limits reserve for it (the
#: response's usage corrects it) and what a cost estimate's upper end assumes.
DEFAULT_OUTPUT_TOKENS = 4096
#: Request fields that hold the output bound, most specific first.
_OUTPUT_FIELDS = ("max_completion_tokens", "max_output_tokens", "max_tokens")
#: Request fields whose text is sent to the model.
_TEXT_FIELDS = ("messages", "system", "prompt", "input", "instructions")
#: Fields of a message or content part that hold its text.
_PART_FIELDS = ("text", "content")


def request_body(payload: Any) -> dict[str, Any]:
    """The model parameters inside a payload: `body` of `{url, body}`, Anthropic's `params`,
    or the payload itself (a dict; anything else has none)."""
    if not isinstance(payload, dict):
        return {}
    for wrapper in ("body", "params"):
        inner = payload.get(wrapper)
        if isinstance(inner, dict):
            return inner
    return payload


def request_model(payload: Any) -> str:
    """The model a request asks for, '' when it names none."""
    model = request_body(payload).get("model")
    return model if isinstance(model, str) else ""


def _chars(value: Any) -> int:
    """Characters of text in a request field: strings, and the text inside lists and
    content parts (`{"type": "text", "text": ...}`, `{"content": ...}`).

    Loops, not generators: workers run it for every job they book, inside their
    transaction."""
    if isinstance(value, str):
        return len(value)
    total = 0
    if isinstance(value, list):
        for item in value:
            total += len(item) if isinstance(item, str) else _chars(item)
    elif isinstance(value, dict):
        for key in _PART_FIELDS:
            part = value.get(key)
            if part is not None:
                total += len(part) if isinstance(part, str) else _chars(part)
    return total


def _output_bound(body: dict[str, Any], payload: Any) -> int:
    for name in _OUTPUT_FIELDS:
        value = body.get(name)
        if type(value) is int and value >= 0:
            return value
    url = payload.get("url") if isinstance(payload, dict) else None
    return 0 if isinstance(url, str) and "embeddings" in url else DEFAULT_OUTPUT_TOKENS


def estimate_request_tokens(payload: Any) -> tuple[int, int]:
    """(input tokens ≈ chars/4 of the text parts, output-token bound) of one request."""
    body = request_body(payload)
    return _input_tokens(body, payload), _output_bound(body, payload)


def booking_estimate(payload: Any) -> tuple[str, int]:
    """(model, input tokens + output bound) of one request: what a rate limit books for it.

    Workers run it for every job of a limited queue they claim, inside their transaction,
    so it reads the request body once (`request_model` + `estimate_request_tokens` would
    find it three times)."""
    body = request_body(payload)
    model = body.get("model")
    tokens = _input_tokens(body, payload) + _output_bound(body, payload)
    return (model if isinstance(model, str) else ""), tokens


def _input_tokens(body: dict[str, Any], payload: Any) -> int:
    """Input tokens ≈ characters / 4 of the body's text fields (at least 1)."""
    chars = 0
    for name in _TEXT_FIELDS:
        value = body.get(name)
        if value is not None:
            chars += len(value) if type(value) is str else _chars(value)
    if chars == 0 and body is payload and isinstance(payload, dict):
        chars = len(str(payload))  # a plain payload of other fields: all of it is input
    return max(1, -(-chars // CHARS_PER_TOKEN))
