"""How many tokens a request will use, estimated before it is sent (no tokenizer needed).

Input: a quarter of the characters of the request's text parts (message contents, system
prompts, `input`, `prompt`, `instructions`) — about four characters per token for English
text; a payload with none of these (a `{key, payload}` job for a custom handler) counts its
whole JSON text. At least one token per request.

Output bound: the request's own cap (`max_completion_tokens`, `max_tokens` or
`max_output_tokens`); embeddings answer no output tokens; without a cap it is
`DEFAULT_OUTPUT_BOUND` (set `max_tokens` in the requests for a tighter bound).
"""

from __future__ import annotations

import json
from typing import Any

#: The output-token bound of a request that sets no cap of its own.
DEFAULT_OUTPUT_BOUND = 4096

#: Request fields whose strings (nested in lists and parts too) are the prompt's text.
_TEXT_FIELDS = ("messages", "system", "input", "prompt", "instructions")
#: Request fields that cap its output tokens, the most specific first.
_CAP_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
#: Inside message parts, the fields that hold text (not roles, types or image URLs).
_PART_TEXT = ("content", "text")

CHARS_PER_TOKEN = 4


def request_body(payload: Any) -> Any:
    """The request inside a job payload: OpenAI's `body`, Anthropic's `params`, or itself."""
    if isinstance(payload, dict):
        for field in ("body", "params"):
            if isinstance(payload.get(field), dict):
                return payload[field]
    return payload


def estimate_request_tokens(payload: Any) -> tuple[int, int]:
    """(input tokens, output-token bound) of one request payload; see the module doc."""
    body = request_body(payload)
    if not isinstance(body, dict):
        return _tokens(json.dumps(body, ensure_ascii=False)), DEFAULT_OUTPUT_BOUND
    fields = [f for f in _TEXT_FIELDS if f in body]
    texts = [t for f in fields for t in _strings(body[f])]
    text = "".join(texts) if fields else json.dumps(body, ensure_ascii=False)
    return _tokens(text), _output_bound(payload, body)


def _tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def _strings(value: Any) -> list[str]:
    """The text strings in a field: a string itself, or those in its lists and parts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for field in _PART_TEXT if field in value for s in _strings(value[field])]
    return []


def _output_bound(payload: Any, body: dict[str, Any]) -> int:
    for field in _CAP_FIELDS:
        cap = body.get(field)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0:
            return cap
    url = payload.get("url") if isinstance(payload, dict) else None
    if isinstance(url, str) and url.rstrip("/").endswith("/embeddings"):
        return 0
    return DEFAULT_OUTPUT_BOUND
