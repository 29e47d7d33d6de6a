"""Deterministic Anthropic Messages answers, shared by `POST /v1/messages` and batches.

The text is the chat route's (`answers.transform` of the last user message), so one question
gets the same answer from both providers; `max_tokens` cuts it (`stop_reason: "max_tokens"`).
Markers (core/sim/quirks.py) are looked for in the custom_id (batches) and the last user
message: `SIM_FAIL_<400|429|500|529>` force an error, `SIM_EXPIRED` / `SIM_CANCELED` give a
batch request that result, `SIM_SLOW_<ms>` slows the call down.
"""

from __future__ import annotations

from typing import Any, Final

from batchdash.core.sim import answers, quirks
from batchdash.core.sim.anthropic_errors import error_envelope
from batchdash.core.sim.errors import JsonDict

SUCCEEDED: Final = "succeeded"
EXPIRED: Final = "expired"
CANCELED: Final = "canceled"
INVALID: Final = "invalid_request_error"
"""Outcomes of a batch request: these three, or an error type (errored)."""

_OUTCOME_MARKERS: Final = ((quirks.EXPIRED, EXPIRED), (quirks.CANCELED, CANCELED))


def params_problem(params: JsonDict) -> str | None:
    """What makes these Messages params invalid (worded like Anthropic), or None."""
    for name in ("model", "max_tokens", "messages"):
        if name not in params:
            return f"{name}: Field required"
    model, max_tokens, messages = params["model"], params["max_tokens"], params["messages"]
    if not isinstance(model, str) or not model:
        return "model: Input should be a valid string"
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: Input should be an integer greater than or equal to 1"
    if not isinstance(messages, list) or not messages:
        return "messages: Input should be a non-empty list"
    if not all(isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in messages):
        return "messages: each message needs a role of 'user' or 'assistant'"
    if params.get("stream"):
        return "stream: the simulator does not support streaming"
    return None


def marker_text(params: JsonDict, custom_id: str = "") -> str:
    """Where markers are looked for: the custom_id and the last user message."""
    messages = params.get("messages")
    text = answers.last_user_text(messages) if isinstance(messages, list) else ""
    return f"{custom_id}\n{text}"


def outcome(params: object, custom_id: str) -> str:
    """What a batch request will end as: succeeded, expired, canceled or an error type."""
    if not isinstance(params, dict) or params_problem(params) is not None:
        return INVALID
    text = marker_text(params, custom_id)
    failure = quirks.anthropic_failure(text)
    if failure is not None:
        return failure[1]
    for marker, result in _OUTCOME_MARKERS:
        if marker in text:
            return result
    return SUCCEEDED


def message(params: JsonDict) -> JsonDict:
    """The Anthropic `message` answering valid `params` (check `params_problem` first)."""
    messages: list[Any] = params["messages"]
    content = answers.chat_content(
        answers.last_user_text(messages), _response_format(params), params["model"]
    )
    limit: int = params["max_tokens"]
    stop_reason = "end_turn"
    if answers.estimate_tokens(content) > limit:
        content, stop_reason = content[: limit * 4], "max_tokens"
    prompt = [answers.content_text(params.get("system"))]
    prompt += [answers.content_text(m.get("content")) for m in messages]
    return {
        "id": "msg_" + answers.digest(answers.stable_json(params)).hex()[:24],
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": [{"type": "text", "text": content}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": answers.estimate_tokens("\n".join(p for p in prompt if p)),
            "output_tokens": answers.estimate_tokens(content),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _response_format(params: JsonDict) -> JsonDict | None:
    """Anthropic's structured output (`output_config.format`, a JSON schema) in the shape of
    OpenAI's `response_format`, so both routes answer it with the same schema filler."""
    config = params.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {"schema": spec.get("schema")}}
    return None


def batch_result(result: str, params: object) -> JsonDict:
    """The `result` object of one batch request that ended as `result`."""
    if result == SUCCEEDED and isinstance(params, dict):
        return {"type": SUCCEEDED, "message": message(params)}
    if result in (EXPIRED, CANCELED):
        return {"type": result}
    problem = (
        params_problem(params)
        if isinstance(params, dict)
        else "params: Input should be a valid dictionary"
    )
    text = problem or f"Simulated {result} (SIM_FAIL marker)."
    return {"type": "errored", "error": error_envelope(result, text)}
