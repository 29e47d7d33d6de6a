"""The result files of a finished simulated batch: output and error JSONL, streamed to disk.

Written once, on the first observation of a status that has results (completed, expired,
cancelled), line by line with the same answer code as the real-time endpoints, in a seeded
shuffled order (OpenAI's results come back in no particular order either).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final, TextIO

from batchdash.core.sim import answers
from batchdash.core.sim.errors import JsonDict, SimError
from batchdash.core.sim.lifecycle import Results, SimBatch, Snapshot, zero_usage
from batchdash.core.sim.quirks import BatchQuirk, LineKind

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

RegisterFile = Callable[[Path, str, int], str]
"""Registers a written result file: (path, filename, created_at) -> its new file id."""


class JsonlSink:
    """A JSONL file opened on first write, so empty result files never exist."""

    def __init__(self, path: Path) -> None:
        """Write to `path` (created on the first record)."""
        self.path = path
        self.lines = 0
        self._fh: TextIO | None = None

    def write(self, record: JsonDict) -> None:
        """Append one record as a compact JSON line."""
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
        usage = zero_usage()
        usage.update(
            input_tokens=self.input,
            output_tokens=self.output,
            total_tokens=self.input + self.output,
        )
        return usage


def write_results(
    batch: SimBatch, snap: Snapshot, out_dir: Path, register: RegisterFile
) -> Results:
    """Stream the output and error files of a finished batch to `out_dir` and register them."""
    order = list(range(snap.processed))
    # results come back in no particular order on OpenAI too: clients must key on custom_id
    random.Random(f"{batch.config.seed}:{batch.id}").shuffle(order)
    out = JsonlSink(out_dir / f"{batch.id}_output.jsonl")
    err = JsonlSink(out_dir / f"{batch.id}_error.jsonl")
    usage = _UsageSum()
    created = batch.wall(batch.config.validating_s)
    with batch.input_path.open("rb") as src:
        for index in order:
            _write_line(batch, src, index, created, (out, err, usage))
    _write_unprocessed(batch, snap, err)
    done = batch.wall(snap.events[-1][1])
    output_id = _register_result(out, batch, "output", done, register)
    error_id = _register_result(err, batch, "error", done, register)
    if error_id is None and batch.quirk is BatchQuirk.EMPTY_ERROR_FILE:
        error_id = ""  # the real-world oddity naive clients trip over
    return Results(output_id, error_id, usage.as_json())


def _write_line(
    batch: SimBatch,
    src: BinaryIO,
    index: int,
    created: int,
    sinks: tuple[JsonlSink, JsonlSink, _UsageSum],
) -> None:
    out, err, usage = sinks
    kind = LineKind.ERRLINE if batch.quirk is BatchQuirk.ALL_FAILED else batch.plan.kinds[index]
    if kind is LineKind.MISSING:
        return
    if kind is LineKind.ERRLINE:
        err.write(_error_record(batch, index, *LINE_ERROR))
        return
    src.seek(batch.plan.offsets[index])
    body = json.loads(src.readline())["body"]
    status, payload = answers.answer(
        batch.endpoint, body, created=created, embedding_dim=batch.config.embedding_dim
    )
    if kind is LineKind.NON2XX:
        status, payload = 500, SimError.server_error().body()
    if status == 200:
        usage.add(payload)
    response = {
        "status_code": status,
        "request_id": _line_hash(batch, index, "req_"),
        "body": payload,
    }
    out.write(_record(batch, index, response, None))


def _write_unprocessed(batch: SimBatch, snap: Snapshot, err: JsonlSink) -> None:
    """Lines an expired/cancelled batch never reached become error lines."""
    if snap.status not in UNPROCESSED_ERRORS:
        return
    code, message = UNPROCESSED_ERRORS[snap.status]
    for index in range(snap.processed, batch.plan.total):
        err.write(_error_record(batch, index, code, message))


def _line_hash(batch: SimBatch, index: int, prefix: str) -> str:
    return prefix + hashlib.sha256(f"{prefix}:{batch.id}:{index}".encode()).hexdigest()[:32]


def _record(
    batch: SimBatch, index: int, response: JsonDict | None, error: JsonDict | None
) -> JsonDict:
    return {
        "id": _line_hash(batch, index, "batch_req_"),
        "custom_id": batch.plan.custom_ids[index],
        "response": response,
        "error": error,
    }


def _error_record(batch: SimBatch, index: int, code: str, message: str) -> JsonDict:
    return _record(batch, index, None, {"code": code, "message": message})


def _register_result(
    sink: JsonlSink, batch: SimBatch, kind: str, created_at: int, register: RegisterFile
) -> str | None:
    if sink.close() is None:
        return None
    return register(sink.path, f"{batch.id}_{kind}.jsonl", created_at)
