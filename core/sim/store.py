"""State of the simulator: uploaded files and batches, with a lazily computed lifecycle.

Nothing runs in the background. Creating a batch really validates its input file and keeps a
small plan (byte offset, custom_id and quirk kind of every line). Each retrieve/list then
derives the status, timestamps and `request_counts` from the elapsed time scaled by `speed`.
The first observation of a status that has result files (completed, expired, cancelled)
writes them, streaming line by line, with the same answer code as the real-time endpoints.

Thread safety: the HTTP layer calls these methods from Starlette's thread pool. `_lock`
guards the dictionaries and the id counter and is held only briefly; each batch has its own
lock so writing one big output file never blocks the rest of the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, TextIO

from batchdash.core.sim import answers
from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict, SimError
from batchdash.core.sim.quirks import BatchQuirk, LineKind, batch_quirk, line_kind

COPY_CHUNK: Final = 1 << 16
EXPIRY_S: Final = 24 * 3600
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
UPLOAD_PURPOSES: Final = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
)
TIMESTAMP_FIELDS: Final = {
    "in_progress": "in_progress_at",
    "finalizing": "finalizing_at",
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelling": "cancelling_at",
    "cancelled": "cancelled_at",
}
CANCELLABLE: Final = frozenset({"validating", "in_progress", "finalizing"})
WITH_RESULTS: Final = frozenset({"completed", "expired", "cancelled"})
UNPROCESSED_ERRORS: Final = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}
LINE_ERROR: Final = ("server_error", "The server had an error processing this request. (simulated)")


# --- files ------------------------------------------------------------------------------


@dataclass
class StoredFile:
    """One file known to the simulator (uploaded, or written as a batch result)."""

    id: str
    filename: str
    purpose: str
    size: int
    created_at: int
    path: Path
    seq: int

    def to_json(self) -> JsonDict:
        """The OpenAI `file` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "expires_at": None,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class _JsonlSink:
    """A JSONL file opened on first write, so empty result files never exist."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._fh: TextIO | None = None

    def write(self, record: JsonDict) -> None:
        if self._fh is None:
            self._fh = self.path.open("w", encoding="utf-8")
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> int | None:
        """Close; the file size, or None when nothing was written."""
        if self._fh is None:
            return None
        self._fh.close()
        return self.path.stat().st_size


# --- validation -------------------------------------------------------------------------


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


# --- batches ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Results:
    output_file_id: str | None
    error_file_id: str | None
    usage: JsonDict


@dataclass
class _Batch:
    id: str
    seq: int
    endpoint: str
    input_file_id: str
    input_path: Path
    metadata: dict[str, str] | None
    quirk: BatchQuirk | None
    plan: InputPlan
    created_wall: float
    created_mono: float
    cancel_at: float | None = None
    """Simulated seconds after creation when cancel was accepted."""
    results: _Results | None = None
    """Set once, when the result files have been written."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class Snapshot:
    """A batch's state at one instant, derived from its schedule."""

    status: str
    processed: int
    events: tuple[tuple[str, float], ...]
    """Statuses reached so far with their simulated time since creation, in order."""


def _zero_usage() -> JsonDict:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


class _UsageSum:
    def __init__(self) -> None:
        self.input = 0
        self.output = 0

    def add(self, body: JsonDict) -> None:
        usage = body.get("usage")
        if isinstance(usage, dict):
            self.input += int(usage.get("prompt_tokens", 0))
            self.output += int(usage.get("completion_tokens", 0))

    def as_json(self) -> JsonDict:
        usage = _zero_usage()
        usage.update(
            input_tokens=self.input,
            output_tokens=self.output,
            total_tokens=self.input + self.output,
        )
        return usage


def _page_ids(ids: list[str], limit: int, after: str | None) -> tuple[list[str], bool]:
    """One page of `ids` after the cursor, and whether more follow."""
    start = 0
    if after is not None:
        if after not in ids:
            raise SimError.invalid(f"No object found for cursor after='{after}'.", param="after")
        start = ids.index(after) + 1
    return ids[start : start + limit], start + limit < len(ids)


def list_json(data: list[JsonDict], has_more: bool) -> JsonDict:
    """An OpenAI cursor-page list object."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """Give the batch its own name for the input, so deleting the upload cannot break it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class SimStore:
    """All files and batches of one simulator instance."""

    def __init__(self, config: SimConfig) -> None:
        """Create the storage directories (a private temp dir unless config.data_dir)."""
        self.config = config
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if config.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="batchdash-sim-")
            root = Path(self._tmp.name)
        else:
            root = config.data_dir
        self._files_dir = root / "files"
        self._batches_dir = root / "batches"
        self._files_dir.mkdir(parents=True, exist_ok=True)
        self._batches_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._counter = 0
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, _Batch] = {}

    def close(self) -> None:
        """Remove the private temp dir, if any (a configured data_dir is kept)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _next_id(self, prefix: str) -> tuple[str, int]:
        """A new id and its creation sequence number (the list order)."""
        with self._lock:
            self._counter += 1
            seq = self._counter
        if not self.config.deterministic_ids:
            return prefix + secrets.token_hex(12), seq
        digest = hashlib.sha256(f"{self.config.seed}:{prefix}:{seq}".encode()).hexdigest()
        return prefix + digest[:24], seq

    # -- files ---------------------------------------------------------------------------

    def add_file(self, source: BinaryIO, filename: str, purpose: str) -> JsonDict:
        """Store an upload (copied in chunks, never whole in memory); the file object."""
        if purpose not in UPLOAD_PURPOSES:
            allowed = ", ".join(sorted(UPLOAD_PURPOSES))
            message = f"Invalid value: '{purpose}'. Supported values are: {allowed}."
            raise SimError.invalid(message, param="purpose", code="invalid_value")
        file_id, seq = self._next_id("file-")
        path = self._files_dir / file_id
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, COPY_CHUNK)
        return self._register(file_id, seq, path, filename, purpose, int(time.time())).to_json()

    def _register(
        self, file_id: str, seq: int, path: Path, filename: str, purpose: str, created_at: int
    ) -> StoredFile:
        stored = StoredFile(file_id, filename, purpose, path.stat().st_size, created_at, path, seq)
        with self._lock:
            self._files[file_id] = stored
        return stored

    def get_file(self, file_id: str) -> StoredFile:
        """The file with this id, or a 404 SimError."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise SimError.not_found(f"No such File object: {file_id}", param="id")
        return stored

    def list_files(
        self, purpose: str | None, limit: int, after: str | None, order: str
    ) -> JsonDict:
        """GET /v1/files: cursor page, newest first unless order='asc'."""
        with self._lock:
            files = sorted(self._files.values(), key=lambda f: f.seq, reverse=order != "asc")
        by_id = {f.id: f for f in files if purpose is None or f.purpose == purpose}
        page, has_more = _page_ids(list(by_id), limit, after)
        return list_json([by_id[i].to_json() for i in page], has_more)

    def delete_file(self, file_id: str) -> JsonDict:
        """DELETE /v1/files/{id}: forget the file and remove it from disk."""
        stored = self.get_file(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        stored.path.unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    def open_content(self, file_id: str) -> BinaryIO:
        """An open binary handle on the file's bytes (the caller streams and closes it)."""
        stored = self.get_file(file_id)
        try:
            return stored.path.open("rb")
        except FileNotFoundError:
            raise SimError.not_found(f"No such File object: {file_id}", param="id") from None

    # -- batches: public API ---------------------------------------------------------------

    def create_batch(self, params: JsonDict) -> JsonDict:
        """POST /v1/batches: check, validate the input for real, register; the batch object."""
        request = parse_create(params)
        try:
            source = self.get_file(request.input_file_id)
        except SimError:
            message = f"No such File object: {request.input_file_id}"
            raise SimError.invalid(message, param="input_file_id") from None
        if source.purpose != "batch":
            message = f"File {source.id} has purpose '{source.purpose}'; batch input needs 'batch'."
            raise SimError.invalid(message, param="input_file_id")
        batch_id, seq = self._next_id("batch_")
        input_path = self._batches_dir / f"{batch_id}_input.jsonl"
        _link_or_copy(source.path, input_path)
        quirk = batch_quirk(request.metadata)
        plan = plan_input(
            input_path,
            request.endpoint,
            max_requests=self.config.max_requests,
            token_limit=self.config.token_limit,
            force_token_limit=quirk is BatchQuirk.TOKEN_LIMIT,
        )
        batch = _Batch(
            batch_id,
            seq,
            request.endpoint,
            source.id,
            input_path,
            request.metadata,
            quirk,
            plan,
            created_wall=time.time(),
            created_mono=time.monotonic(),
        )
        with self._lock:
            self._batches[batch_id] = batch
        return self._observe(batch)

    def retrieve_batch(self, batch_id: str) -> JsonDict:
        """GET /v1/batches/{id}: the batch as of now."""
        return self._observe(self._batch(batch_id))

    def cancel_batch(self, batch_id: str) -> JsonDict:
        """POST /v1/batches/{id}/cancel: freeze processing now, then `cancelling`."""
        batch = self._batch(batch_id)
        with batch.lock:
            if batch.cancel_at is None:
                now = self._now(batch)
                status = self._snapshot(batch, now).status
                if status not in CANCELLABLE:
                    message = f"Cannot cancel a batch with status '{status}'."
                    raise SimError.invalid(message, param="batch_id")
                batch.cancel_at = now
        # a second cancel while cancelling/cancelled just returns the batch, like OpenAI
        return self._observe(batch)

    def list_batches(self, limit: int, after: str | None) -> JsonDict:
        """GET /v1/batches: cursor page, newest first (only the page's batches are observed)."""
        with self._lock:
            batches = sorted(self._batches.values(), key=lambda b: b.seq, reverse=True)
        by_id = {b.id: b for b in batches}
        page, has_more = _page_ids(list(by_id), limit, after)
        return list_json([self._observe(by_id[i]) for i in page], has_more)

    # -- batches: schedule -----------------------------------------------------------------

    def _batch(self, batch_id: str) -> _Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise SimError.not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
        return batch

    def _now(self, batch: _Batch) -> float:
        """Simulated seconds since the batch was created."""
        return (time.monotonic() - batch.created_mono) * self.config.speed

    def _wall(self, batch: _Batch, sim_time: float) -> int:
        """Unix timestamp of a simulated instant of this batch."""
        return int(batch.created_wall + sim_time / self.config.speed)

    def _stop_line(self, batch: _Batch) -> int:
        """How many lines get processed if nothing interrupts (half of them for `expire`)."""
        total = batch.plan.total
        return total // 2 if batch.quirk is BatchQuirk.EXPIRE else total

    def _processing_end(self, batch: _Batch) -> float:
        cfg = self.config
        return cfg.validating_s + self._stop_line(batch) / cfg.lines_per_second

    def _natural_events(self, batch: _Batch) -> list[tuple[str, float]]:
        """The status schedule when nobody cancels."""
        cfg = self.config
        events = [("validating", 0.0)]
        if batch.plan.errors:
            return [*events, ("failed", cfg.validating_s)]
        end = self._processing_end(batch)
        events.append(("in_progress", cfg.validating_s))
        if batch.quirk is BatchQuirk.EXPIRE:
            return [*events, ("expired", end + cfg.expire_stall_s)]
        stalled = batch.quirk is BatchQuirk.STALL_FINALIZING
        finalizing = cfg.stall_finalizing_s if stalled else cfg.finalizing_s
        return [*events, ("finalizing", end), ("completed", end + finalizing)]

    def _processed_at(self, batch: _Batch, sim_time: float) -> int:
        """Lines finished by `sim_time` (processing runs in input order)."""
        if sim_time >= self._processing_end(batch):
            return self._stop_line(batch)  # exact, whatever the float rounding below
        elapsed = sim_time - self.config.validating_s
        return (
            0
            if elapsed < 0
            else min(self._stop_line(batch), int(elapsed * self.config.lines_per_second))
        )

    def _snapshot(self, batch: _Batch, now: float) -> Snapshot:
        events = self._natural_events(batch)
        horizon = now
        if batch.cancel_at is not None:
            cancel_at = batch.cancel_at
            slow = batch.quirk is BatchQuirk.SLOW_CANCEL
            duration = self.config.slow_cancel_s if slow else self.config.cancel_s
            events = [e for e in events if e[1] < cancel_at]
            events += [("cancelling", cancel_at), ("cancelled", cancel_at + duration)]
            horizon = min(now, cancel_at)  # lines finished before the cancel call only
        reached = tuple(e for e in events if e[1] <= now)
        return Snapshot(reached[-1][0], self._processed_at(batch, horizon), reached)

    # -- batches: rendering and results ----------------------------------------------------

    def _observe(self, batch: _Batch) -> JsonDict:
        """Current batch object, writing the result files on first sight of them."""
        snap = self._snapshot(batch, self._now(batch))
        if snap.status in WITH_RESULTS and batch.results is None:
            with batch.lock:
                # recompute under the lock: a cancel may have landed since the first look
                snap = self._snapshot(batch, self._now(batch))
                if batch.results is None and snap.status in WITH_RESULTS:
                    batch.results = self._write_results(batch, snap)
        return self._batch_json(batch, snap)

    def _batch_json(self, batch: _Batch, snap: Snapshot) -> JsonDict:
        reached = dict(snap.events)
        stamps = {
            name: self._wall(batch, reached[status]) if status in reached else None
            for status, name in TIMESTAMP_FIELDS.items()
        }
        failed = (
            snap.processed
            if batch.quirk is BatchQuirk.ALL_FAILED
            else batch.plan.errline_prefix[snap.processed]
        )
        results = batch.results if snap.status in WITH_RESULTS else None
        errors = {"object": "list", "data": batch.plan.errors} if snap.status == "failed" else None
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.plan.model,
            "errors": errors,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": snap.status,
            "output_file_id": results.output_file_id if results else None,
            "error_file_id": results.error_file_id if results else None,
            "created_at": int(batch.created_wall),
            "expires_at": int(batch.created_wall) + EXPIRY_S,
            **stamps,
            "request_counts": {
                "total": batch.plan.total if "in_progress" in reached else 0,
                "completed": snap.processed - failed,
                "failed": failed,
            },
            "usage": results.usage if results else _zero_usage(),
            "metadata": batch.metadata,
        }

    def _write_results(self, batch: _Batch, snap: Snapshot) -> _Results:
        """Stream the output and error files of a finished batch to disk and register them."""
        order = list(range(snap.processed))
        # results come back in no particular order on OpenAI too: clients must key on custom_id
        random.Random(f"{self.config.seed}:{batch.id}").shuffle(order)
        out = _JsonlSink(self._batches_dir / f"{batch.id}_output.jsonl")
        err = _JsonlSink(self._batches_dir / f"{batch.id}_error.jsonl")
        usage = _UsageSum()
        created = self._wall(batch, self.config.validating_s)
        with batch.input_path.open("rb") as src:
            for index in order:
                self._write_line(batch, src, index, created, (out, err, usage))
        self._write_unprocessed(batch, snap, err)
        done = self._wall(batch, snap.events[-1][1])
        output_id = self._register_result(out, batch, "output", done)
        error_id = self._register_result(err, batch, "error", done)
        if error_id is None and batch.quirk is BatchQuirk.EMPTY_ERROR_FILE:
            error_id = ""  # the real-world oddity naive clients trip over
        return _Results(output_id, error_id, usage.as_json())

    def _write_line(
        self,
        batch: _Batch,
        src: BinaryIO,
        index: int,
        created: int,
        sinks: tuple[_JsonlSink, _JsonlSink, _UsageSum],
    ) -> None:
        out, err, usage = sinks
        kind = LineKind.ERRLINE if batch.quirk is BatchQuirk.ALL_FAILED else batch.plan.kinds[index]
        if kind is LineKind.MISSING:
            return
        if kind is LineKind.ERRLINE:
            err.write(self._error_record(batch, index, *LINE_ERROR))
            return
        src.seek(batch.plan.offsets[index])
        body = json.loads(src.readline())["body"]
        status, payload = answers.answer(
            batch.endpoint, body, created=created, embedding_dim=self.config.embedding_dim
        )
        if kind is LineKind.NON2XX:
            status, payload = 500, SimError.server_error().body()
        if status == 200:
            usage.add(payload)
        response = {
            "status_code": status,
            "request_id": self._line_hash(batch, index, "req_"),
            "body": payload,
        }
        out.write(self._record(batch, index, response, None))

    def _write_unprocessed(self, batch: _Batch, snap: Snapshot, err: _JsonlSink) -> None:
        """Lines an expired/cancelled batch never reached become error lines."""
        if snap.status not in UNPROCESSED_ERRORS:
            return
        code, message = UNPROCESSED_ERRORS[snap.status]
        for index in range(snap.processed, batch.plan.total):
            err.write(self._error_record(batch, index, code, message))

    def _line_hash(self, batch: _Batch, index: int, prefix: str) -> str:
        return prefix + hashlib.sha256(f"{prefix}:{batch.id}:{index}".encode()).hexdigest()[:32]

    def _record(
        self, batch: _Batch, index: int, response: JsonDict | None, error: JsonDict | None
    ) -> JsonDict:
        return {
            "id": self._line_hash(batch, index, "batch_req_"),
            "custom_id": batch.plan.custom_ids[index],
            "response": response,
            "error": error,
        }

    def _error_record(self, batch: _Batch, index: int, code: str, message: str) -> JsonDict:
        return self._record(batch, index, None, {"code": code, "message": message})

    def _register_result(
        self, sink: _JsonlSink, batch: _Batch, kind: str, created_at: int
    ) -> str | None:
        if sink.close() is None:
            return None
        file_id, seq = self._next_id("file-")
        self._register(
            file_id, seq, sink.path, f"{batch.id}_{kind}.jsonl", "batch_output", created_at
        )
        return file_id
