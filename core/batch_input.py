"""Batch input files: the provider's rules for a request line, sharding, metadata, upload lines.

`validate_file` checks a JSONL file without loading it whole and plans its shards;
`iter_requests` and `request_line` take a line apart for the store and put it back together
for the upload, so what is sent is always what the store holds. Nothing here touches the
store or the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchdash.core.errors import BatchError
from batchdash.core.inputs import (
    MAX_REPORTED_ERRORS,
    STYLE_PROVIDERS,
    InputError,
    InputProblem,
    request_style,
)
from batchdash.core.models import dumps

#: Provider limits per input file (OpenAI Batch API); bigger files are split into shards.
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024

#: Endpoints the Batch API accepts; every line's `url` must equal the batch endpoint.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)

#: Anthropic's custom_id rule (1–64 of [A-Za-z0-9_-]); OpenAI takes any non-empty string.
ANTHROPIC_CUSTOM_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: The provider's metadata limits: pairs per batch, characters per key and per value.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


@dataclass(frozen=True, slots=True)
class Shard:
    """A run of consecutive request lines that fits the provider's per-file limits."""

    first: int
    count: int
    size: int


@dataclass(slots=True)
class InputPlan:
    """What validating a file learned: endpoint, model and how to split it."""

    path: Path
    endpoint: str
    model: str
    lines: int = 0
    size: int = 0
    shards: list[Shard] = field(default_factory=list)


class LineChecker:
    """Checks lines one by one, collecting problems (up to a limit) and shard bounds.

    `check` holds the provider's rules for one record (here OpenAI's); another provider
    overrides it and keeps the rest (problems, duplicates, sharding).
    """

    def __init__(
        self, path: Path, endpoint: str | None, max_lines: int, max_bytes: int, provider: str
    ) -> None:
        self.path = path
        self.provider = provider
        self.endpoint = endpoint
        self.model: str | None = None
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.problems: list[InputProblem] = []
        self.total_problems = 0
        self.seen: dict[str, int] = {}
        self.shards: list[Shard] = []
        self.count = 0
        self.size = 0

    def problem(self, line: int, message: str) -> None:
        self.total_problems += 1
        if len(self.problems) < MAX_REPORTED_ERRORS:
            self.problems.append(InputProblem(self.path, line, message))

    def add(self, line_no: int, text: str) -> None:
        try:
            record = json.loads(text)
        except ValueError as exc:
            self.problem(line_no, f"invalid JSON: {getattr(exc, 'msg', exc)}")
            return
        message = self.check(line_no, record)
        if message:
            self.problem(line_no, message)
            return
        self._place(len(dumps(record).encode()) + 1)

    def check(self, line_no: int, record: Any) -> str | None:
        """Why this record breaks the provider's rules, or None."""
        problem = self.check_id(line_no, record)
        if problem:
            return problem
        if record.get("method", "POST") != "POST":
            return "method must be POST"
        url = record.get("url")
        if self.endpoint is None:
            if url not in ENDPOINTS:
                return f"url {url!r} is not a batch endpoint ({', '.join(ENDPOINTS)})"
            self.endpoint = url
        elif url != self.endpoint:
            return f"url {url!r} differs from the batch endpoint {self.endpoint}"
        body = record.get("body")
        if not isinstance(body, dict):
            return "body must be a JSON object"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return "body.model is required"
        if self.model is None:
            self.model = model
        elif model != self.model:
            return f"model {model!r} differs from {self.model!r}: one model per file"
        return None

    def check_id(self, line_no: int, record: Any) -> str | None:
        """A JSON object with a custom_id the provider accepts, unique in the file; or why not."""
        if not isinstance(record, dict):
            return "expected a JSON object"
        custom_id = record.get("custom_id")
        problem = custom_id_problem(custom_id, self.provider)
        if problem:
            return problem
        first = self.seen.setdefault(str(custom_id), line_no)
        if first != line_no:
            return f"duplicate custom_id {custom_id!r} (first on line {first})"
        return None

    def _place(self, size: int) -> None:
        """Put the line in the current shard, or start a new one when a limit is hit."""
        last = self.shards[-1] if self.shards else None
        if last is None or last.count >= self.max_lines or last.size + size > self.max_bytes:
            self.shards.append(Shard(self.count, 1, size))
        else:
            self.shards[-1] = Shard(last.first, last.count + 1, last.size + size)
        self.count += 1
        self.size += size


def custom_id_problem(custom_id: Any, provider: str = "openai") -> str | None:
    """Why a custom_id is refused by this provider, or None.

    OpenAI accepts any non-empty string (`lesson-0.field0.english` included); only
    Anthropic's Message Batches restrict it to 1–64 of [A-Za-z0-9_-].
    """
    if not isinstance(custom_id, str) or not custom_id:
        return f"custom_id {custom_id!r} must be a non-empty string"
    if provider == "anthropic" and not ANTHROPIC_CUSTOM_ID_RE.fullmatch(custom_id):
        return f"custom_id {custom_id!r} must be 1-64 characters of A-Z a-z 0-9 _ - (Anthropic)"
    return None


def detect_provider(path: Path) -> str:
    """The provider whose batch format the file's request lines are in.

    `{custom_id, params}` lines are Anthropic's, `{custom_id, method, url, body}` OpenAI's;
    a file mixing both is refused naming the first line that differs from the first
    request line. Lines that are not JSON objects are left to validation, which names
    them; a file without any request line is OpenAI's (validation says what is wrong).
    """
    first: tuple[int, str] | None = None
    for line_no, text in nonblank_lines(path) if path.is_file() else ():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        provider = STYLE_PROVIDERS[request_style(record)]
        if first is None:
            first = (line_no, provider)
        elif provider != first[1]:
            raise BatchError(
                f"{path}:{line_no}: an {provider} request line in a file of {first[1]} lines "
                f"(line {first[0]}); one batch goes to one provider"
            )
    return first[1] if first else "openai"


def validate_file(
    path: Path,
    *,
    endpoint: str | None = None,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    provider: str = "openai",
) -> InputPlan:
    """Check a batch input file without loading it whole; InputError lists bad lines.

    Rules: JSON objects, a unique custom_id the provider accepts (`custom_id_problem`),
    method POST, url equal to the endpoint (by default the first line's), a body with one
    model for the file. Lines beyond `max_lines` or `max_bytes` go to further shards.
    """
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise BatchError(f"--endpoint {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    return check_lines(LineChecker(path, endpoint, max_lines, max_bytes, provider))


def check_lines(checker: LineChecker) -> InputPlan:
    """Run a checker over its file; the plan, or InputError listing the bad lines."""
    path = checker.path
    if not path.is_file():
        raise InputError([InputProblem(path, 0, "no such file")], 1)
    for line_no, text in nonblank_lines(path):
        checker.add(line_no, text)
    if checker.total_problems:
        raise InputError(checker.problems, checker.total_problems)
    if not checker.count or checker.endpoint is None or checker.model is None:
        raise InputError([InputProblem(path, 0, "no requests in file")], 1)
    return InputPlan(
        path, checker.endpoint, checker.model, checker.count, checker.size, checker.shards
    )


def nonblank_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; undecodable bytes are a line problem."""
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for line_no, text in enumerate(handle, start=1):
            if text.strip():
                yield line_no, text


def iter_requests(path: Path) -> Iterator[tuple[str, str]]:
    """(custom_id, payload JSON) of each request line of a validated file, in order.

    The payload is the line without its custom_id ({method, url, body}); the upload is
    rebuilt from it, so what is sent is always what the store holds.
    """
    for _, text in nonblank_lines(path):
        record = json.loads(text)
        custom_id = record.pop("custom_id")
        yield custom_id, dumps(record)


def check_metadata(metadata: dict[str, str]) -> None:
    """Enforce the provider's metadata rules locally, before anything is uploaded."""
    if len(metadata) > MAX_METADATA_PAIRS:
        raise BatchError(
            f"metadata has {len(metadata)} pairs; at most {MAX_METADATA_PAIRS} "
            "(batchdash uses up to 2 of them)"
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > MAX_METADATA_KEY:
            raise BatchError(f"metadata {key!r}: keys ≤ {MAX_METADATA_KEY} chars, string values")
        if len(value) > MAX_METADATA_VALUE:
            raise BatchError(f"metadata {key!r}: value longer than {MAX_METADATA_VALUE} chars")


def request_line(custom_id: str, payload: str) -> str:
    """One upload line rebuilt from a stored job: the payload with its custom_id first."""
    head = '{"custom_id":' + json.dumps(custom_id, ensure_ascii=False)
    return head + ("}" if payload == "{}" else "," + payload[1:]) + "\n"
