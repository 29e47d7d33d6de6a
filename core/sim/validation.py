"""Checks of a new simulated batch: its creation parameters and, line by line, its input file.

OpenAI validates the input before a batch goes `in_progress`; so does the simulator, for real.
`plan_input` streams the file once and keeps a small plan (byte offset, custom_id and quirk
kind of every line), or the validation errors a `failed` batch reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from batchdash.core.sim import answers
from batchdash.core.sim.errors import JsonDict, SimError
from batchdash.core.sim.quirks import LineKind, line_kind

MAX_REPORTED_ERRORS: Final = 100
"""Validation keeps scanning after this many errors but stops listing them."""
MAX_METADATA_PAIRS: Final = 16
MAX_METADATA_KEY: Final = 64
MAX_METADATA_VALUE: Final = 512
NOMINAL_TOKEN_LIMIT: Final = 90_000
"""Limit quoted in the message of the forced (`sim_quirk=token_limit`) failure."""

OPENAI_BATCH_ENDPOINTS: Final = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)


@dataclass
class InputPlan:
    """What validating an input file learned: errors, or enough to process it later."""

    errors: list[JsonDict] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    custom_ids: list[str] = field(default_factory=list)
    kinds: list[LineKind] = field(default_factory=list)
    errline_prefix: list[int] = field(default_factory=lambda: [0])
    """errline_prefix[k] = number of `errline` lines among the first k."""
    model: str | None = None
    tokens: int = 0

    @property
    def total(self) -> int:
        """Number of request lines (0 when validation failed)."""
        return len(self.offsets)


def _validation_error(code: str, message: str, line: int | None, param: str | None) -> JsonDict:
    return {"code": code, "message": message, "param": param, "line": line}


class _Scanner:
    """Validates input lines one at a time, as OpenAI does before `in_progress`."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.plan = InputPlan()
        self.count = 0
        self._seen: set[str] = set()
        self._first_model: str | None = None

    def _error(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.plan.errors) < MAX_REPORTED_ERRORS:
            self.plan.errors.append(_validation_error(code, message, line, param))

    def add(self, number: int, offset: int, raw: bytes) -> None:
        """Check physical line `number` (1-based) starting at byte `offset`."""
        if not raw.strip():
            return  # blank lines (e.g. a trailing newline) are not requests
        self.count += 1
        try:
            request = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            request = None
        if not isinstance(request, dict):
            self._error("invalid_json_line", "This line is not parseable as valid JSON.", number)
            return
        checked = self._check(number, request)
        if checked is not None:
            custom_id, body = checked
            self.plan.offsets.append(offset)
            self.plan.custom_ids.append(custom_id)
            self.plan.kinds.append(line_kind(custom_id))
            self.plan.tokens += answers.prompt_tokens(self.endpoint, body)

    def _check(self, number: int, request: JsonDict) -> tuple[str, JsonDict] | None:
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            self._error(
                "missing_required_parameter",
                "Missing required parameter: 'custom_id'.",
                number,
                "custom_id",
            )
            return None
        if custom_id in self._seen:
            message = (
                "The custom_id for this request is a duplicate of another request. "
                "The custom_id parameter must be unique for each request in a batch."
            )
            self._error("duplicate_custom_id", message, number, "custom_id")
            return None
        self._seen.add(custom_id)
        if request.get("url") != self.endpoint:
            message = (
                "The provided url for this request does not match "
                f"the batch endpoint {self.endpoint}."
            )
            self._error("mismatched_url", message, number, "url")
            return None
        body = request.get("body")
        if not isinstance(body, dict):
            self._error(
                "missing_required_parameter", "Missing required parameter: 'body'.", number, "body"
            )
            return None
        return (custom_id, body) if self._check_model(number, body) else None

    def _check_model(self, number: int, body: JsonDict) -> bool:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self._error(
                "missing_required_parameter",
                "Missing required parameter: 'body.model'.",
                number,
                "body.model",
            )
            return False
        if self._first_model is None:
            self._first_model = self.plan.model = model
        elif model != self._first_model:
            message = (
                f"The provided model '{model}' does not match the model '{self._first_model}' of "
                "the other requests: a batch file may only use one model."
            )
            self._error("mismatched_model", message, number, "body.model")
            return False
        return True

    def finish(
        self, max_requests: int, token_limit: int | None, force_token_limit: bool
    ) -> InputPlan:
        """File-level checks, then the final plan (request arrays emptied on failure)."""
        plan = self.plan
        if self.count == 0:
            plan.errors.append(
                _validation_error("empty_file", "The input file is empty.", None, None)
            )
        elif self.count > max_requests:
            message = f"The input file has {self.count} requests; the maximum is {max_requests}."
            plan.errors.insert(0, _validation_error("too_many_requests", message, None, None))
        exceeded = token_limit is not None and plan.tokens > token_limit
        if not plan.errors and (exceeded or force_token_limit):
            limit = token_limit if token_limit is not None else NOMINAL_TOKEN_LIMIT
            message = (
                f"Enqueued token limit reached for {plan.model} in organization org-sim. "
                f"Limit: {limit:,} enqueued tokens. "
                "Please try again once some in_progress batches have been completed."
            )
            plan.errors.append(_validation_error("token_limit_exceeded", message, None, None))
        if plan.errors:
            return InputPlan(errors=plan.errors, model=plan.model)
        for kind in plan.kinds:
            plan.errline_prefix.append(plan.errline_prefix[-1] + (kind is LineKind.ERRLINE))
        return plan


def plan_input(
    path: Path,
    endpoint: str,
    *,
    max_requests: int,
    token_limit: int | None,
    force_token_limit: bool = False,
) -> InputPlan:
    """Validate the JSONL file at `path` for a batch on `endpoint`, streaming it."""
    scanner = _Scanner(endpoint)
    offset = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            scanner.add(number, offset, raw)
            offset += len(raw)
    return scanner.finish(max_requests, token_limit, force_token_limit)


# --- batch creation parameters ----------------------------------------------------------


@dataclass(frozen=True)
class CreateRequest:
    """Checked parameters of POST /v1/batches."""

    input_file_id: str
    endpoint: str
    metadata: dict[str, str] | None


def _check_endpoint(endpoint: object) -> str:
    if endpoint is None:
        raise SimError.missing("endpoint")
    if endpoint not in OPENAI_BATCH_ENDPOINTS:
        supported = ", ".join(OPENAI_BATCH_ENDPOINTS)
        message = f"Invalid value: '{endpoint}'. Supported values are: {supported}."
        raise SimError.invalid(message, param="endpoint", code="invalid_value")
    if endpoint not in answers.ANSWERED_ENDPOINTS:
        supported = ", ".join(sorted(answers.ANSWERED_ENDPOINTS))
        message = f"The simulator does not process '{endpoint}' batches (it does: {supported})."
        raise SimError.invalid(message, param="endpoint", code="unsupported_value")
    return str(endpoint)


def check_metadata(value: object) -> dict[str, str] | None:
    """Enforce OpenAI's metadata rules: ≤ 16 pairs, keys ≤ 64 chars, string values ≤ 512."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SimError.invalid(
            "Invalid type for 'metadata': expected an object.", "metadata", "invalid_type"
        )
    if len(value) > MAX_METADATA_PAIRS:
        message = (
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(value)} properties "
            "instead."
        )
        raise SimError.invalid(message, "metadata", "object_above_max_properties")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            message = (
                f"Invalid 'metadata': key '{key[:20]}...' is longer than "
                f"{MAX_METADATA_KEY} characters."
            )
            raise SimError.invalid(message, "metadata", "string_above_max_length")
        if not isinstance(item, str):
            message = f"Invalid type for 'metadata.{key}': expected a string."
            raise SimError.invalid(message, f"metadata.{key}", "invalid_type")
        if len(item) > MAX_METADATA_VALUE:
            message = (
                f"Invalid 'metadata.{key}': string longer than {MAX_METADATA_VALUE} characters."
            )
            raise SimError.invalid(message, f"metadata.{key}", "string_above_max_length")
    return {str(k): str(v) for k, v in value.items()}


def parse_create(params: JsonDict) -> CreateRequest:
    """Check the body of POST /v1/batches; raise 400 SimErrors like OpenAI."""
    input_file_id = params.get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id:
        raise SimError.missing("input_file_id")
    endpoint = _check_endpoint(params.get("endpoint"))
    window = params.get("completion_window")
    if window is None:
        raise SimError.missing("completion_window")
    if window != "24h":
        message = f"Invalid value: '{window}'. Supported values are: '24h'."
        raise SimError.invalid(message, param="completion_window", code="invalid_value")
    return CreateRequest(input_file_id, endpoint, check_metadata(params.get("metadata")))
