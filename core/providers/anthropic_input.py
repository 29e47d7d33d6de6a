"""Message Batches input: the rules of a request line, and requests rebuilt from the store.

A line is `{"custom_id": "...", "params": {model, max_tokens, messages, ...}}`. Everything
the API would refuse for the whole batch is checked here, before any request, naming the
line: the custom_id (1-64 of [A-Za-z0-9_-], unique) and the three required params.
Problems deeper inside `params` are the API's to judge: they come back per request as
`invalid_request_error`. Files over 100,000 requests or 256 MB become linked shards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchdash.core.batch_input import InputPlan, LineChecker, check_lines
from batchdash.core.db.ports import Tx

#: The Messages API path, stored as the endpoint of every Anthropic batch.
ENDPOINT = "/v1/messages"
#: Requests per batch.
MAX_REQUESTS = 100_000
#: Bytes per create call is 256 MB; a little is kept for the `{"requests": [...]}` envelope
#: and the SDK's own encoding of the same JSON.
MAX_BYTES = 256 * 1024 * 1024 - 1024 * 1024
#: What `params` must carry.
REQUIRED_PARAMS = ("model", "max_tokens", "messages")
#: The model column of a batch whose requests name different models (each result still
#: names its own model, and is priced by it).
MIXED_MODELS = "(mixed)"
_LINE_FIELDS = frozenset({"custom_id", "params"})


class _Checker(LineChecker):
    """Anthropic's rules for one line; duplicates, problems and shards as for OpenAI."""

    def check(self, line_no: int, record: Any) -> str | None:
        problem = self.check_id(line_no, record)
        if problem:
            return problem
        extra = sorted(set(record) - _LINE_FIELDS)
        if extra:
            return f"unexpected field {extra[0]!r} (a line is {{custom_id, params}})"
        params = record.get("params")
        if not isinstance(params, dict):
            return "params must be a JSON object"
        problem = _params_problem(params)
        if problem is None:
            self._note_model(params["model"])
        return problem

    def _note_model(self, model: str) -> None:
        if self.model is None:
            self.model = model
        elif model != self.model:
            self.model = MIXED_MODELS


def _params_problem(params: dict[str, Any]) -> str | None:
    missing = [name for name in REQUIRED_PARAMS if name not in params]
    if missing:
        return f"params.{missing[0]} is required"
    model, max_tokens, messages = (params[name] for name in REQUIRED_PARAMS)
    if not isinstance(model, str) or not model:
        return "params.model must be a non-empty string"
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return f"params.max_tokens must be a positive integer, not {max_tokens!r}"
    if not isinstance(messages, list) or not messages:
        return "params.messages must be a non-empty list"
    return None


def validate_file(
    path: Path, *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES
) -> InputPlan:
    """Check a Message Batches JSONL file without loading it whole; InputError lists the
    bad lines (FILE:LINE). Lines beyond the per-batch limits go to further shards."""
    checker = _Checker(path, ENDPOINT, max_requests, max_bytes, "anthropic")
    return check_lines(checker)


def requests_of(tx: Tx, batch_id: int) -> list[dict[str, Any]]:
    """The batch's requests as sent to `create`, rebuilt from what the store holds.

    All of them at once: the API takes them inline in one JSON body (at most 256 MB).
    """
    return list(_requests(tx, batch_id))


def _requests(tx: Tx, batch_id: int) -> Iterator[dict[str, Any]]:
    for custom_id, payload in tx.items.batch_upload_rows(batch_id):
        yield {"custom_id": custom_id, **json.loads(payload)}
