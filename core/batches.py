"""Remote-batch policy that needs no network: validation, sharding, states and outcomes.

`core.providers.openai_batch` does the talking to the provider; this module decides what
a line, a status or a result means, and composes the store's write functions into the
transactions that submission, ingestion and resubmission need. Nothing here imports
`openai`, so the CLI can validate a file (and `--once` can read the store) without paying
for that import.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.errors import InvalidInputError
from batchdash.core.inputs import MAX_REPORTED_ERRORS, InputError, InputProblem
from batchdash.core.models import (
    Batch,
    BatchState,
    ErrorMatch,
    ItemOutcome,
    ItemResult,
    JobFilter,
    JobStatus,
    NewBatch,
    dumps,
)
from batchdash.core.pricing import price_of
from batchdash.core.providers._openai import usage_tokens

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

#: Metadata key carrying the durable-submission key (found again by `reconcile`).
SUBMIT_KEY_META = "batchdash_submit_key"
SHARD_META = "batchdash_shard"
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512

#: Job handler name of jobs executed by a remote batch (never claimed by local workers).
BATCH_HANDLER = "openai_batch"

#: Error-file codes that mean "never ran" rather than "ran and failed".
_UNRUN_CODES = {"batch_expired": ItemOutcome.EXPIRED, "batch_cancelled": ItemOutcome.CANCELLED}

_RAW_TO_STATE = {
    "validating": BatchState.VALIDATING,
    "in_progress": BatchState.RUNNING,
    "finalizing": BatchState.FINALIZING,
    "cancelling": BatchState.CANCELLING,
    # `completed` becomes succeeded or partial once the results are ingested.
    "completed": BatchState.FINALIZING,
    "failed": BatchState.FAILED,
    "expired": BatchState.EXPIRED,
    "cancelled": BatchState.CANCELLED,
}

#: Raw statuses after which the provider changes nothing more.
TERMINAL_RAW = frozenset({"completed", "failed", "expired", "cancelled"})

#: Outcomes that `resubmit` sends again.
RESUBMIT_OUTCOMES = (
    ItemOutcome.ERRORED,
    ItemOutcome.NON_2XX,
    ItemOutcome.EXPIRED,
    ItemOutcome.CANCELLED,
    ItemOutcome.MISSING,
)

#: Line errors that the same request gets again on every try (an invalid request, a
#: prompt over the context length): `resubmit` leaves them out unless asked.
PERMANENT_ERRORS = ErrorMatch(
    status_codes=(400, 413, 422),
    error_codes=("invalid_request_error", "context_length_exceeded", "string_above_max_length"),
)


class BatchError(InvalidInputError):
    """A batch operation that cannot be done as asked (one-line message, exit 2)."""


# --------------------------------------------------------------------------- states


def normalize_state(raw: str | None) -> BatchState:
    """The normalized state of a provider status; unknown words map to `unknown`."""
    return _RAW_TO_STATE.get(raw or "", BatchState.UNKNOWN)


def job_status_of(outcome: str) -> JobStatus:
    """What an item's outcome makes of its job (the outcome is kept as the error kind)."""
    if outcome == ItemOutcome.SUCCEEDED:
        return JobStatus.SUCCEEDED
    if outcome == ItemOutcome.CANCELLED:
        return JobStatus.CANCELLED
    return JobStatus.FAILED


def absent_outcome(state: str) -> ItemOutcome:
    """Outcome of an input line found in neither result file, given the batch's state.

    An expired or cancelled batch never ran it; a failed one failed it; after `completed`
    it is simply missing (a provider bug worth showing, and resubmitting).
    """
    if state == BatchState.EXPIRED:
        return ItemOutcome.EXPIRED
    if state == BatchState.CANCELLED:
        return ItemOutcome.CANCELLED
    if state == BatchState.FAILED:
        return ItemOutcome.ERRORED
    return ItemOutcome.MISSING


# --------------------------------------------------------------------------- validation


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


class _Checker:
    """Checks lines one by one, collecting problems (up to a limit) and shard bounds."""

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
        message = self._check(line_no, record)
        if message:
            self.problem(line_no, message)
            return
        self._place(len(dumps(record).encode()) + 1)

    def _check(self, line_no: int, record: Any) -> str | None:
        if not isinstance(record, dict):
            return "expected a JSON object"
        custom_id = record.get("custom_id")
        problem = custom_id_problem(custom_id, self.provider)
        if problem:
            return problem
        first = self.seen.setdefault(str(custom_id), line_no)
        if first != line_no:
            return f"duplicate custom_id {custom_id!r} (first on line {first})"
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
    if not path.is_file():
        raise InputError([InputProblem(path, 0, "no such file")], 1)
    checker = _Checker(path, endpoint, max_lines, max_bytes, provider)
    for line_no, text in _lines(path):
        checker.add(line_no, text)
    if checker.total_problems:
        raise InputError(checker.problems, checker.total_problems)
    if not checker.count or checker.endpoint is None or checker.model is None:
        raise InputError([InputProblem(path, 0, "no requests in file")], 1)
    return InputPlan(
        path, checker.endpoint, checker.model, checker.count, checker.size, checker.shards
    )


def _lines(path: Path) -> Iterator[tuple[int, str]]:
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
    for _, text in _lines(path):
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


def new_submit_key() -> str:
    """A fresh key that identifies one submission on the provider's side."""
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- submission


def record_intent(
    tx: Tx,
    plan: InputPlan,
    *,
    queue: str,
    metadata: dict[str, str],
    now: float,
    base_url: str | None = None,
    provider: str = "openai",
) -> list[int]:
    """Insert one batch per shard, with its items and jobs, in the caller's transaction.

    Runs before anything is uploaded: a crash afterwards leaves `submitting` batches that
    `reconcile` finishes. A custom_id that already names a job of the queue is an error
    (it would be the same work twice). `provider` and `base_url` say where every later
    call on these batches goes.
    """
    ids = []
    for index, shard in enumerate(plan.shards):
        shard_meta = dict(metadata)
        if len(plan.shards) > 1:
            shard_meta[SHARD_META] = f"{index + 1}/{len(plan.shards)}"
        row = NewBatch(
            submit_key=new_submit_key(),
            queue=queue,
            endpoint=plan.endpoint,
            model=plan.model,
            input_path=str(plan.path),
            metadata=shard_meta,
            total=shard.count,
            shard_index=index if len(plan.shards) > 1 else None,
            shard_count=len(plan.shards) if len(plan.shards) > 1 else None,
            base_url=base_url,
            provider=provider,
        )
        ids.append(tx.batches.add_batch(row, now))
    requests = iter_requests(plan.path)
    for batch_id, shard in zip(ids, plan.shards, strict=True):
        chunk: list[tuple[int, str, str, str]] = []
        for line_no in range(1, shard.count + 1):
            custom_id, payload = next(requests)
            chunk.append((line_no, custom_id, custom_id, payload))
            if len(chunk) >= INGEST_CHUNK:
                _add_lines(tx, plan.path, batch_id, queue, chunk, now)
                chunk = []
        _add_lines(tx, plan.path, batch_id, queue, chunk, now)
        tx.items.batch_lines_enqueued(batch_id, now)
    return ids


def _add_lines(
    tx: Tx,
    path: Path,
    batch_id: int,
    queue: str,
    chunk: Sequence[tuple[int, str, str, str]],
    now: float,
) -> None:
    existing = tx.items.existing_job_keys(queue, [key for _, _, key, _ in chunk])
    if existing:
        key, job_id = next(iter(existing.items()))
        raise BatchError(
            f"{path}: custom_id {key!r} is already job {job_id} of queue {queue!r} "
            f"({len(existing)} such in this chunk); submit with another --queue"
        )
    tx.items.add_batch_lines(batch_id, queue, BATCH_HANDLER, chunk, now)


# --------------------------------------------------------------------------- ingestion

#: Result lines written per transaction: big enough to amortize the commit (a chunk's
#: random job updates share pages; 5,000 ingests 1.4x faster than 2,000), small enough to
#: keep memory flat (two chunks of ~2 KB lines) and the write lock under ~0.3 s.
INGEST_CHUNK = 5000


class _Prices:
    """Batch-priced cost per model name, looked up once per distinct model."""

    def __init__(self, default_model: str | None) -> None:
        self.default_model = default_model
        self._cache: dict[str, tuple[float, float] | None] = {}

    def cost(self, model: Any, tokens_in: int | None, tokens_out: int | None) -> float | None:
        name = model if isinstance(model, str) and model else self.default_model
        if name is None or (tokens_in is None and tokens_out is None):
            return None
        if name not in self._cache:
            one_in = price_of(name, 1_000_000, 0, batch=True)
            one_out = price_of(name, 0, 1_000_000, batch=True)
            self._cache[name] = None if one_in is None or one_out is None else (one_in, one_out)
        per_million = self._cache[name]
        if per_million is None:
            return None
        return ((tokens_in or 0) * per_million[0] + (tokens_out or 0) * per_million[1]) / 1e6


def _error_fields(error: Any) -> tuple[str | None, str | None]:
    if not isinstance(error, dict):
        return None, None if error is None else str(error)
    code = error.get("code")
    message = error.get("message")
    return (None if code is None else str(code), None if message is None else str(message))


_DECODER = json.JSONDecoder()
_BODY_KEY = '"body":'


def _split_body(text: str) -> tuple[Any, str | None]:
    """Parse a result line, keeping the response body's own text (no re-encoding).

    Re-serializing every ~2 KB body costs more than parsing it, so the body is decoded in
    place and sliced out. Whenever the line does not have the expected shape, it is parsed
    the plain way and the body re-encoded later (body text None).
    """
    start = text.find(_BODY_KEY)
    if start > 0:
        begin = start + len(_BODY_KEY)
        try:
            body, end = _DECODER.raw_decode(text, begin + (text[begin] == " "))
            skeleton = json.loads(text[:begin] + "null" + text[end:])
            response = skeleton.get("response") if isinstance(skeleton, dict) else None
            if isinstance(response, dict) and "body" in response and response["body"] is None:
                response["body"] = body
                return skeleton, text[begin:end].strip()
        except (ValueError, IndexError):
            pass
    return json.loads(text), None


def parse_result_line(text: str, prices: _Prices) -> ItemResult | None:
    """One output/error-file line as an item result, or None when it names no custom_id."""
    try:
        record, body_text = _split_body(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        return None
    response = record.get("response")
    if isinstance(response, dict):
        return _response_result(record["custom_id"], response, body_text, prices)
    code, message = _error_fields(record.get("error"))
    return ItemResult(
        custom_id=record["custom_id"],
        outcome=_UNRUN_CODES.get(code or "", ItemOutcome.ERRORED),
        error_code=code or "no_response",
        error_message=f"{code or 'error'}: {message or 'line has neither response nor error'}",
    )


def _response_result(
    custom_id: str, response: dict[str, Any], body_text: str | None, prices: _Prices
) -> ItemResult:
    """An output-file line: succeeded on 2xx, else non_2xx (even when counted completed)."""
    status = response.get("status_code")
    body = response.get("body")
    body_dict = body if isinstance(body, dict) else {}
    tokens_in, tokens_out = usage_tokens(body_dict)
    ok = isinstance(status, int) and 200 <= status < 300
    code, message = (None, None) if ok else _error_fields(body_dict.get("error", body))
    return ItemResult(
        custom_id=custom_id,
        outcome=ItemOutcome.SUCCEEDED if ok else ItemOutcome.NON_2XX,
        status_code=status if isinstance(status, int) else None,
        error_code=None if ok else (code or f"http_{status}"),
        error_message=None if ok else f"HTTP {status}: {message or 'no message'}",
        result_json=body_text or (None if body is None else dumps(body)),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=prices.cost(body_dict.get("model"), tokens_in, tokens_out),
    )


def _with_job_fields(
    results: Sequence[ItemResult],
) -> list[tuple[ItemResult, str, str | None]]:
    """Attach the job status and error kind each outcome implies."""
    out = []
    for r in results:
        status = job_status_of(r.outcome)
        out.append((r, str(status), None if status == JobStatus.SUCCEEDED else str(r.outcome)))
    return out


#: A parsed chunk of result lines: (item result, job status, job error kind) each.
ParsedChunk = list[tuple[ItemResult, str, str | None]]


def parse_chunk(lines: Sequence[str], model: str | None) -> ParsedChunk:
    """Parse a chunk of result lines, skipping unusable ones (no custom_id, not JSON).

    Pure CPU work kept out of the write transaction, so it can run while the database
    thread writes the previous chunk.
    """
    prices = _Prices(model)
    results = [r for r in (parse_result_line(text, prices) for text in lines) if r is not None]
    return _with_job_fields(results)


def failed_batch_results(tx: Tx, batch_id: int, errors: Any) -> list[ItemResult]:
    """Per-line results of a batch that failed validation, from its `errors.data`."""
    data = errors if isinstance(errors, list) else []
    by_line: dict[int, dict[str, Any]] = {
        e["line"]: e for e in data if isinstance(e, dict) and isinstance(e.get("line"), int)
    }
    results = []
    for custom_id, line_no in tx.items.batch_item_lines(batch_id, list(by_line)):
        code, message = _error_fields(by_line[line_no])
        results.append(
            ItemResult(
                custom_id=custom_id,
                outcome=ItemOutcome.ERRORED,
                error_code=code,
                error_message=f"line {line_no}: {code}: {message}",
            )
        )
    return results


def _absent_error(batch: Batch) -> tuple[str, str]:
    """(code, message) given to lines that no result file mentions."""
    data = batch.errors if isinstance(batch.errors, list) else []
    for e in data:
        if isinstance(e, dict) and not e.get("line"):
            code, message = _error_fields(e)
            return code or "batch_failed", f"batch failed: {code}: {message}"
    outcome = absent_outcome(batch.state)
    if outcome == ItemOutcome.ERRORED:
        return "batch_failed", "batch failed validation on other lines"
    if outcome == ItemOutcome.MISSING:
        return "missing", "in neither the output nor the error file"
    return str(outcome), f"not run: batch {batch.raw_status or batch.state}"


def final_state(raw: str | None, state: str, counts: dict[str, int]) -> str:
    """Normalized state once results are in: completed splits into succeeded/partial."""
    if raw != "completed":
        return state
    bad = sum(n for outcome, n in counts.items() if outcome != ItemOutcome.SUCCEEDED)
    return BatchState.PARTIAL if bad else BatchState.SUCCEEDED


def finish_ingest(tx: Tx, batch: Batch, now: float) -> str:
    """After the result files: settle lines nobody mentioned, totals, final state.

    Lines of a failed batch get their validation error; other unmentioned lines become
    expired, cancelled or missing (see `absent_outcome`). Returns the final state.
    """
    if batch.state == BatchState.FAILED:
        results = failed_batch_results(tx, batch.id, batch.errors)
        tx.items.apply_item_results(batch.id, _with_job_fields(results), now)
    outcome = absent_outcome(batch.state)
    code, message = _absent_error(batch)
    pending = tx.items.pending_item_ids(batch.id)
    for start in range(0, len(pending), INGEST_CHUNK):
        results = [
            ItemResult(custom_id, outcome, error_code=code, error_message=message)
            for custom_id in pending[start : start + INGEST_CHUNK]
        ]
        tx.items.apply_item_results(batch.id, _with_job_fields(results), now)
    state = final_state(batch.raw_status, batch.state, tx.items.batch_outcome_counts(batch.id))
    tx.items.close_ingest(batch.id, state, now)
    return state


# --------------------------------------------------------------------------- resubmit, import


def _own_metadata(metadata: Any) -> dict[str, str]:
    """User metadata without the keys batchdash manages itself."""
    if not isinstance(metadata, dict):
        return {}
    return {
        str(k): str(v)
        for k, v in metadata.items()
        if k not in (SUBMIT_KEY_META, SHARD_META) and v is not None
    }


@dataclass(frozen=True, slots=True)
class ResubmitPlan:
    """What `resubmit` of a batch would send: `lines` in all, `permanent` of them with an
    error that will not pass on retry (sent only when included)."""

    batch_id: int
    lines: int
    permanent: int

    def sent(self, include_permanent: bool) -> int:
        """How many lines go to the child batch."""
        return self.lines if include_permanent else self.lines - self.permanent

    def left_out(self, include_permanent: bool) -> str:
        """'' or a sentence saying which lines stay behind and how to send them too."""
        if include_permanent or not self.permanent:
            return ""
        return (
            f"left out {self.permanent} line{'s' if self.permanent != 1 else ''} whose error "
            "will not pass on retry (invalid request, context length): add --include-permanent"
        )


def resubmit_plan(tx: Tx, batch_id: int) -> ResubmitPlan:
    """Count what a resubmit of this batch would send (NotFoundError for an unknown batch)."""
    batch = tx.batches.get_batch(batch_id)
    lines, permanent = tx.items.resubmittable_counts(batch.id, RESUBMIT_OUTCOMES, PERMANENT_ERRORS)
    return ResubmitPlan(batch.id, lines, permanent)


def record_resubmit(tx: Tx, parent_id: int, now: float, *, include_permanent: bool = False) -> int:
    """Record a child batch of the parent's failed, expired, cancelled and missing lines.

    Lines whose error will not pass on retry are left out unless `include_permanent`.
    Refused while the parent's results are not in, and when no line is left to send (the
    same work is never sent twice: a line already resubmitted belongs to the child).
    Returns the child's id.
    """
    parent = tx.batches.get_batch(parent_id)
    if parent.ingested_at is None:
        raise BatchError(f"batch {parent.id} is {parent.state}; resubmit once its results are in")
    plan = resubmit_plan(tx, parent.id)
    if not plan.sent(include_permanent):
        raise BatchError(_nothing_to_resubmit(tx, plan))
    child = tx.batches.add_batch(
        NewBatch(
            queue=parent.queue,
            endpoint=parent.endpoint,
            model=parent.model,
            submit_key=new_submit_key(),
            input_path=parent.input_path,
            metadata=_own_metadata(parent.metadata),
            parent_id=parent.id,
            base_url=parent.base_url,  # the same endpoint as the parent unless told otherwise
            provider=parent.provider,
        ),
        now,
    )
    leave_out = ErrorMatch() if include_permanent else PERMANENT_ERRORS
    lines = tx.items.resubmit_items(parent.id, child, RESUBMIT_OUTCOMES, now, leave_out=leave_out)
    tx.batches.update_batch(parent.id, {}, now, ("batch_resubmitted", f"{lines} lines → {child}"))
    return child


def _nothing_to_resubmit(tx: Tx, plan: ResubmitPlan) -> str:
    if plan.permanent:
        return f"batch {plan.batch_id}: nothing resubmitted; {plan.left_out(False)}"
    children = tx.batches.batch_children(plan.batch_id)
    if children:
        return (
            f"batch {plan.batch_id} was already resubmitted as batch {children[-1]}; "
            "resubmit that one instead"
        )
    return f"batch {plan.batch_id} has no failed, expired, cancelled or missing lines to resubmit"


@dataclass(frozen=True, slots=True)
class RemoteJobs:
    """Failed or cancelled jobs that a remote batch ran: only a resubmit retries them."""

    batch_id: int
    jobs: int
    #: Lines of that batch whose error will not pass on retry (left out by default).
    permanent: int

    def advice(self) -> str:
        """One line: how many, which batch, and the command that retries them."""
        text = (
            f"{self.jobs} of the selected jobs ran in remote batch {self.batch_id}: "
            f"run `batchdash batches resubmit {self.batch_id}`"
        )
        if self.permanent:
            text += (
                f" (add --include-permanent to also send its {self.permanent} "
                f"line{'s' if self.permanent != 1 else ''} whose error will not pass on retry)"
            )
        return text


def remote_jobs(tx: Tx, flt: JobFilter) -> list[RemoteJobs]:
    """The failed/cancelled jobs matching `flt` that remote batches ran, per batch."""
    return [
        RemoteJobs(b, n, resubmit_plan(tx, b).permanent)
        for b, n in tx.items.remote_job_batches(flt).items()
    ]


def record_import(
    tx: Tx,
    fields: dict[str, Any],
    metadata: Any,
    queue: str,
    now: float,
    base_url: str | None = None,
    provider: str = "openai",
) -> int:
    """Track a batch submitted by another tool (at `provider`, `base_url`); lines load when
    it ends."""
    batch_id = tx.batches.add_batch(
        NewBatch(
            queue=queue,
            endpoint=str(fields.get("endpoint") or ""),
            model=fields.get("model"),
            remote_id=fields["remote_id"],
            state=fields["state"],
            raw_status=fields["raw_status"],
            metadata=metadata if isinstance(metadata, dict) else None,
            base_url=base_url,
            provider=provider,
        ),
        now,
    )
    # A new row: nothing to race, so the provider's fields go in as they are.
    tx.batches.update_batch(batch_id, {**fields, "polled_at": now}, now)
    return batch_id


def record_imported_lines(tx: Tx, batch: Batch, path: Path, now: float) -> None:
    """Items and jobs for an imported batch's input file (job key = remote id/custom_id).

    Lines without a usable custom_id are skipped: the provider rejected them anyway.
    """
    chunk: list[tuple[int, str, str, str]] = []
    line_no = 0
    for _, text in _lines(path):
        line_no += 1
        try:
            record = json.loads(text)
            custom_id = record.pop("custom_id")
        except (ValueError, AttributeError, KeyError, TypeError):
            continue
        if not isinstance(custom_id, str):
            continue
        chunk.append((line_no, custom_id, f"{batch.remote_id}/{custom_id}", dumps(record)))
        if len(chunk) >= INGEST_CHUNK:
            tx.items.add_batch_lines(batch.id, batch.queue, BATCH_HANDLER, chunk, now)
            chunk = []
    tx.items.add_batch_lines(batch.id, batch.queue, BATCH_HANDLER, chunk, now)
    tx.items.batch_lines_enqueued(batch.id, now)
    tx.batches.update_batch(batch.id, {"total": tx.items.count_batch_items(batch.id)}, now)


def request_line(custom_id: str, payload: str) -> str:
    """One upload line rebuilt from a stored job: the payload with its custom_id first."""
    head = '{"custom_id":' + json.dumps(custom_id, ensure_ascii=False)
    return head + ("}" if payload == "{}" else "," + payload[1:]) + "\n"
