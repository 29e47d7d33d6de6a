"""Deterministic model answers shared by the real-time endpoints and batch processing.

`answer(endpoint, body, ...)` is pure: the same request body always gives the same status and
body (only the `created` timestamp comes from the caller), so a batch output line holds
exactly what the real-time endpoint answers for the same request.

* Chat content is a reversible word-wise transform of the last user message — every
  space-separated word reversed, prefixed by "[sim] " — so the answer is as long as the
  question (+6 chars). `untransform()` gives the question back.
* `response_format` json_schema: JSON built from the schema (properties, enums, ranges),
  values drawn from a generator seeded by a hash of the model and the user text, so two
  judge models score the same job differently (and each always the same way).
* Tokens are estimated as ceil(len(text) / 4), at least 1.
* Embeddings are unit vectors derived from a hash of each input.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import struct
from typing import Any, Final

from batchdash.core.sim import quirks
from batchdash.core.sim.errors import JsonDict, SimError

CHAT: Final = "/v1/chat/completions"
EMBEDDINGS: Final = "/v1/embeddings"
COMPLETIONS: Final = "/v1/completions"
ANSWERED_ENDPOINTS: Final = frozenset({CHAT, EMBEDDINGS, COMPLETIONS})
"""Endpoints the simulator can answer (real-time and inside batches)."""

SIM_PREFIX: Final = "[sim] "
_MAX_SCHEMA_DEPTH: Final = 16
_MAX_DIMENSIONS: Final = 4096


# --- text helpers -----------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """About one token per 4 characters, never less than 1."""
    return max(1, math.ceil(len(text) / 4))


def transform(text: str) -> str:
    """The simulated answer to `text`: each space-separated word reversed, prefixed."""
    # reversing the whole string reverses every word *and* their order; reversing the word
    # list puts the order back. All in C: batch output of 50k long lines stays fast.
    return SIM_PREFIX + " ".join(text[::-1].split(" ")[::-1])


def untransform(answer_text: str) -> str:
    """Invert `transform` (tests use it to check an answer belongs to its question)."""
    return " ".join(answer_text.removeprefix(SIM_PREFIX)[::-1].split(" ")[::-1])


def digest(text: str) -> bytes:
    """SHA-256 of `text` (the seed of every deterministic choice)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def stable_json(value: object) -> str:
    """`value` as JSON with sorted keys, so equal requests hash equally."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def content_text(content: object) -> str:
    """Text of a chat message `content`: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def last_user_text(messages: list[Any]) -> str:
    """Text of the last `user` message (or of the last message if no user message)."""
    dicts = [m for m in messages if isinstance(m, dict)]
    users = [m for m in dicts if m.get("role") == "user"]
    chosen = users[-1] if users else (dicts[-1] if dicts else {})
    return content_text(chosen.get("content"))


def _string_list(value: object, param: str) -> list[str]:
    """Normalise an embeddings `input` / completions `prompt` into a list of texts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [json.dumps(value)]  # one pre-tokenised input
        if all(isinstance(v, str | list) for v in value):
            return [v if isinstance(v, str) else json.dumps(v) for v in value]
    raise SimError.invalid(f"'{param}' must be a non-empty string or array.", param=param)


def request_text(endpoint: str, body: JsonDict) -> str:
    """The text markers are looked for in (never raises on malformed bodies)."""
    try:
        if endpoint == CHAT:
            messages = body.get("messages")
            return last_user_text(messages) if isinstance(messages, list) else ""
        key = "input" if endpoint == EMBEDDINGS else "prompt"
        return "\n".join(_string_list(body.get(key), key))
    except SimError:
        return ""


def prompt_tokens(endpoint: str, body: JsonDict) -> int:
    """Estimated input tokens of one request (used for usage and the enqueued-token limit)."""
    if endpoint == CHAT:
        messages = body.get("messages")
        if isinstance(messages, list):
            texts = [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
            return estimate_tokens("\n".join(texts))
        return estimate_tokens(stable_json(body))
    try:
        key = "input" if endpoint == EMBEDDINGS else "prompt"
        return sum(estimate_tokens(t) for t in _string_list(body.get(key), key))
    except SimError:
        return estimate_tokens(stable_json(body))


# --- JSON-schema filling ----------------------------------------------------------------


def _number_or_none(value: object) -> float | None:
    """`value` if it is a real number (bool excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


class _SchemaFiller:
    """Builds one JSON value matching a JSON schema, with seeded random choices."""

    def __init__(self, root: JsonDict, seed: bytes, out_of_range: bool) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.out_of_range = out_of_range

    def value(self, schema: object, depth: int = 0) -> object:
        """A value for `schema` (None once nesting gets absurdly deep)."""
        if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
            return None
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.value(self._first_non_null(schema[key]), depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged: JsonDict = {}
            for part in schema["allOf"]:
                merged.update(self._resolve(part) if isinstance(part, dict) else {})
            return self.value(merged, depth + 1)
        return self._typed(schema, self._type_of(schema), depth)

    def _resolve(self, schema: JsonDict) -> JsonDict:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: object = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        # sibling keywords next to $ref (e.g. a description) win over the target's
        merged = {**node, **schema} if isinstance(node, dict) else dict(schema)
        merged.pop("$ref", None)
        return merged

    @staticmethod
    def _first_non_null(options: list[Any]) -> object:
        for option in options:
            if isinstance(option, dict) and option.get("type") != "null":
                return option
        return options[0]

    @staticmethod
    def _type_of(schema: JsonDict) -> str:
        declared = schema.get("type")
        if isinstance(declared, list):
            non_null = [t for t in declared if t != "null"]
            declared = non_null[0] if non_null else "null"
        if isinstance(declared, str):
            return declared
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def _typed(self, schema: JsonDict, type_: str, depth: int) -> object:
        if type_ == "object":
            props = schema.get("properties")
            items = props.items() if isinstance(props, dict) else []
            return {name: self.value(sub, depth + 1) for name, sub in items}
        if type_ == "array":
            return self._array(schema, depth)
        if type_ == "integer":
            return self._integer(schema)
        if type_ == "number":
            return self._number(schema)
        if type_ == "boolean":
            return self.rng.random() < 0.5
        if type_ == "null":
            return None
        return self._string(schema)

    def _array(self, schema: JsonDict, depth: int) -> list[object]:
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", low + 2))
        count = self.rng.randint(low, max(low, min(high, low + 2)))
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [self.value(sub, depth + 1) for sub in prefix]
        return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]

    @staticmethod
    def _bounds(schema: JsonDict, step: float) -> tuple[float | None, float | None]:
        """Inclusive (low, high) from minimum/maximum and exclusive* (draft-04 bools ignored)."""
        low, high = _number_or_none(schema.get("minimum")), _number_or_none(schema.get("maximum"))
        exclusive_low = _number_or_none(schema.get("exclusiveMinimum"))
        exclusive_high = _number_or_none(schema.get("exclusiveMaximum"))
        if exclusive_low is not None:
            low = exclusive_low + step
        if exclusive_high is not None:
            high = exclusive_high - step
        return low, high

    def _integer(self, schema: JsonDict) -> int:
        low_f, high_f = self._bounds(schema, 1)
        low = math.ceil(low_f) if low_f is not None else None
        high = math.floor(high_f) if high_f is not None else None
        if high is not None and self.out_of_range:
            return high + 1 + self.rng.randrange(10)
        low = low if low is not None else (high - 100 if high is not None else 0)
        high = high if high is not None else low + 100
        return self.rng.randint(low, max(low, high))

    def _number(self, schema: JsonDict) -> float:
        low, high = self._bounds(schema, 0.001)
        if high is not None and self.out_of_range:
            return float(high) + 1.5
        low = low if low is not None else (high - 100.0 if high is not None else 0.0)
        high = high if high is not None else low + 100.0
        value = round(low + (high - low) * self.rng.random(), 3)
        # rounding may step over a bound: fall back to the midpoint, always inside
        return value if low <= value <= high else (low + high) / 2

    def _string(self, schema: JsonDict) -> str:
        formats = {
            "date-time": "2024-01-01T00:00:00Z",
            "date": "2024-01-01",
            "time": "00:00:00",
            "email": "sim@example.com",
            "uri": "https://example.com/sim",
        }
        text = formats.get(str(schema.get("format")), f"sim-{self.rng.getrandbits(24):06x}")
        min_len = int(schema.get("minLength", 0))
        max_len = schema.get("maxLength")
        text = text.ljust(min_len, "x")
        return text[: int(max_len)] if isinstance(max_len, int) else text


def schema_value(schema: JsonDict, seed_text: str, *, out_of_range: bool = False) -> object:
    """A JSON value matching `schema`, chosen deterministically from `seed_text`."""
    return _SchemaFiller(schema, digest(seed_text), out_of_range).value(schema)


# --- endpoint answers -------------------------------------------------------------------


def _require_model(body: JsonDict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise SimError.missing("model")
    return model


def chat_content(text: str, response_format: object, model: str) -> str:
    """The answer to `text`: JSON matching a `json_schema` response format, `{"answer"}` for
    `json_object`, else the transformed text."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema" and isinstance(response_format, dict):
        if quirks.INVALID_JSON in text:
            return SIM_PREFIX + "this is not JSON {"
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        value = schema_value(
            schema if isinstance(schema, dict) else {},
            f"{model}\x1f{text}",
            out_of_range=quirks.OUT_OF_RANGE in text,
        )
        return json.dumps(value, ensure_ascii=False)
    if kind == "json_object":
        return json.dumps({"answer": transform(text)}, ensure_ascii=False)
    return transform(text)


def _truncate(content: str, body: JsonDict) -> tuple[str, str]:
    """Apply max_completion_tokens / max_tokens like a model would: cut, finish 'length'."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and limit > 0 and estimate_tokens(content) > limit:
        return content[: limit * 4], "length"
    return content, "stop"


def _usage(prompt: int, completion: int) -> JsonDict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _choice_count(body: JsonDict) -> int:
    n = body.get("n", 1)
    return min(max(n, 1), 8) if isinstance(n, int) else 1


def _chat(body: JsonDict, created: int, embedding_dim: int) -> JsonDict:
    model = _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SimError.missing("messages")
    if body.get("stream"):
        raise SimError.invalid("The simulator does not support stream=true.", param="stream")
    content, finish = _truncate(
        chat_content(last_user_text(messages), body.get("response_format"), model), body
    )
    n = _choice_count(body)
    message: JsonDict = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": [],
    }
    choices = [
        {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
        for i in range(n)
    ]
    return {
        "id": "chatcmpl-" + digest(stable_json(body)).hex()[:29],
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": _usage(prompt_tokens(CHAT, body), estimate_tokens(content) * n),
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
    }


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector of `dimensions` floats derived from `text`."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dimensions:
        block = digest(f"{counter}:{text}")
        raw.extend(b / 127.5 - 1.0 for b in block)
        counter += 1
    raw = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


def _embeddings(body: JsonDict, created: int, embedding_dim: int) -> JsonDict:
    model = _require_model(body)
    inputs = _string_list(body.get("input"), "input")
    dims = body.get("dimensions", embedding_dim)
    if not isinstance(dims, int) or not 1 <= dims <= _MAX_DIMENSIONS:
        raise SimError.invalid(f"'dimensions' must be within 1..{_MAX_DIMENSIONS}.", "dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise SimError.invalid("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    data = []
    for index, text in enumerate(inputs):
        vector: list[float] | str = embedding_vector(text, dims)
        if encoding == "base64":
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(estimate_tokens(t) for t in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def _completions(body: JsonDict, created: int, embedding_dim: int) -> JsonDict:
    model = _require_model(body)
    prompts = _string_list(body.get("prompt"), "prompt")
    choices: list[JsonDict] = []
    completion = 0
    for index, prompt in enumerate(prompts):
        text, finish = _truncate(transform(prompt), body)
        completion += estimate_tokens(text)
        choices.append({"index": index, "text": text, "logprobs": None, "finish_reason": finish})
    return {
        "id": "cmpl-" + digest(stable_json(body)).hex()[:29],
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": _usage(prompt_tokens(COMPLETIONS, body), completion),
    }


_HANDLERS: Final = {CHAT: _chat, EMBEDDINGS: _embeddings, COMPLETIONS: _completions}


def marker_failure(status: int) -> SimError:
    """The error a `SIM_FAIL_<status>` marker produces."""
    if status == 429:
        return SimError.rate_limited()
    if status == 500:
        return SimError.server_error()
    return SimError.invalid("Simulated invalid request (SIM_FAIL_400 marker).")


def answer(
    endpoint: str, body: object, *, created: int, embedding_dim: int = 8
) -> tuple[int, JsonDict]:
    """Status code and JSON body the endpoint answers to `body` (errors included).

    `SIM_FAIL_*` markers are honoured here; `SIM_SLOW_*` is left to the real-time caller
    because batch processing must not sleep.
    """
    handler = _HANDLERS.get(endpoint)
    if handler is None:
        return 404, SimError.not_found(f"Invalid URL (POST {endpoint})").body()
    if not isinstance(body, dict):
        return 400, SimError.invalid("The request body must be a JSON object.").body()
    forced = quirks.failure_status(request_text(endpoint, body))
    try:
        if forced is not None:
            raise marker_failure(forced)
        return 200, handler(body, created, embedding_dim)
    except SimError as exc:
        return exc.status, exc.body()
