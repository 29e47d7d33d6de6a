"""Anthropic Message Batches in the simulator: create, retrieve, list, cancel, delete, results.

Each batch reuses the OpenAI side's lazily computed schedule (`SimBatch` in
core/sim/lifecycle.py: timing by `speed`, cancel freezing the lines processed so far) and
maps its statuses onto Anthropic's `processing_status`: validating / in_progress /
finalizing → `in_progress`, cancelling → `canceling`, completed / cancelled → `ended`.
Requests are written to disk at create (one JSON line each, offsets kept); the first
observation of `ended` streams the results file to disk in a seeded shuffled order, so
results never come back in input order and a 20,000-request batch costs flat memory.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from batchdash.core.sim import anthropic_messages as am
from batchdash.core.sim import quirks
from batchdash.core.sim.anthropic_errors import AnthropicError
from batchdash.core.sim.errors import JsonDict
from batchdash.core.sim.lifecycle import CANCELLABLE, EXPIRY_S, WITH_RESULTS, SimBatch, Snapshot
from batchdash.core.sim.results import JsonlSink
from batchdash.core.sim.store import SimStore
from batchdash.core.sim.validation import InputPlan

CUSTOM_ID_RE: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
PROCESSING_STATUS: Final = {
    "validating": "in_progress",
    "in_progress": "in_progress",
    "finalizing": "in_progress",
    "cancelling": "canceling",
}
"""Anthropic's processing_status for each schedule status; every other one is `ended`."""
RESULT_TYPES: Final = ("succeeded", "errored", "canceled", "expired")


def rfc3339(timestamp: float) -> str:
    """A Unix timestamp as an RFC 3339 UTC instant, as Anthropic writes them."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class MessageBatch:
    """One message batch: its schedule, each request's outcome, and its results once ended."""

    schedule: SimBatch
    outcomes: list[str]
    results_path: Path
    counts: dict[str, int] | None = None
    """Result tallies, set when the results file has been written."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        """The `msgbatch_...` id."""
        return self.schedule.id

    def _at(self, sim_time: float) -> str:
        """RFC 3339 wall instant of a simulated time (sub-second: never before created_at)."""
        return rfc3339(self.schedule.created_wall + sim_time / self.schedule.config.speed)

    def to_json(self, snap: Snapshot, base_url: str) -> JsonDict:
        """The `message_batch` object in state `snap`; URLs start with `base_url`."""
        schedule = self.schedule
        status = PROCESSING_STATUS.get(snap.status, "ended")
        ended = status == "ended"
        counts = self.counts if ended and self.counts else dict.fromkeys(RESULT_TYPES, 0)
        cancel_at = schedule.cancel_at
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                # Anthropic moves requests out of `processing` only when the whole batch ends
                "processing": 0 if ended else schedule.plan.total,
                **counts,
            },
            "created_at": rfc3339(schedule.created_wall),
            "expires_at": rfc3339(schedule.created_wall + EXPIRY_S),
            "ended_at": self._at(snap.events[-1][1]) if ended else None,
            "cancel_initiated_at": self._at(cancel_at) if cancel_at is not None else None,
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


def _check_request(index: int, item: object, seen: set[str]) -> tuple[str, object]:
    """(custom_id, params) of `requests[index]`, or a 400 naming what is wrong."""
    if not isinstance(item, dict):
        raise AnthropicError(400, f"requests.{index}: Input should be a valid dictionary")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID_RE.fullmatch(custom_id):
        raise AnthropicError(
            400,
            f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'",
        )
    if custom_id in seen:
        raise AnthropicError(400, f"requests.{index}.custom_id: duplicate custom_id '{custom_id}'")
    seen.add(custom_id)
    if "params" not in item:
        raise AnthropicError(400, f"requests.{index}.params: Field required")
    return custom_id, item["params"]


def parse_requests(body: bytes, max_requests: int) -> list[Any]:
    """The `requests` array of a batch-create body, or a 400."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise AnthropicError(400, "The request body is not a valid JSON object.")
    requests = value.get("requests")
    if not isinstance(requests, list):
        raise AnthropicError(400, "requests: Field required")
    if not 1 <= len(requests) <= max_requests:
        raise AnthropicError(
            400, f"requests: a batch holds 1 to {max_requests} requests, got {len(requests)}"
        )
    return requests


class AnthropicStore:
    """Every message batch of one simulator instance (ids and files shared with `SimStore`)."""

    def __init__(self, store: SimStore) -> None:
        """Keep batches under `store.root/anthropic`; ids come from `store.next_id`."""
        self.store = store
        self.config = store.config
        self.dir = store.root / "anthropic"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._batches: dict[str, MessageBatch] = {}

    def create(self, body: bytes, base_url: str) -> JsonDict:
        """POST /v1/messages/batches: check every request, write them to disk, register."""
        requests = parse_requests(body, self.config.anthropic_max_requests)
        seen: set[str] = set()
        checked = [_check_request(i, item, seen) for i, item in enumerate(requests)]
        batch_id, seq = self.store.next_id("msgbatch_")
        path = self.dir / f"{batch_id}_requests.jsonl"
        plan = InputPlan()
        outcomes: list[str] = []
        slow_ms = 0
        with path.open("w", encoding="utf-8") as out:
            for custom_id, params in checked:
                plan.offsets.append(out.tell())
                plan.custom_ids.append(custom_id)
                outcomes.append(am.outcome(params, custom_id))
                if isinstance(params, dict):
                    slow_ms += quirks.slow_ms(am.marker_text(params, custom_id))
                line = {"custom_id": custom_id, "params": params}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        schedule = SimBatch(
            id=batch_id,
            seq=seq,
            endpoint="/v1/messages",
            input_file_id="",
            input_path=path,
            metadata=None,
            quirk=None,
            plan=plan,
            config=self.config,
            extra_s=slow_ms / 1000,
        )
        batch = MessageBatch(schedule, outcomes, self.dir / f"{batch_id}_results.jsonl")
        with self._lock:
            self._batches[batch_id] = batch
        if any(quirks.AMBIGUOUS_CREATE in custom_id for custom_id in plan.custom_ids):
            # created, but the answer is lost: a blind retry makes a second batch (the SDK
            # retries 500s), so clients must create without retries and reconcile by listing
            raise AnthropicError(500, "Internal server error (simulated, batch was created).")
        return self._observe(batch, base_url)

    def retrieve(self, batch_id: str, base_url: str) -> JsonDict:
        """GET /v1/messages/batches/{id}: the batch as of now."""
        return self._observe(self._batch(batch_id), base_url)

    def cancel(self, batch_id: str, base_url: str) -> JsonDict:
        """POST .../{id}/cancel: freeze processing now; a second cancel changes nothing."""
        batch = self._batch(batch_id)
        schedule = batch.schedule
        with schedule.lock:
            if schedule.cancel_at is None:
                now = schedule.now()
                if schedule.snapshot(now).status not in CANCELLABLE:
                    raise AnthropicError(400, f"Message batch {batch_id} has already ended.")
                schedule.cancel_at = now
        return self._observe(batch, base_url)

    def list_batches(
        self, limit: int, after_id: str | None, before_id: str | None, base_url: str
    ) -> JsonDict:
        """GET /v1/messages/batches: newest first, a page after `after_id` or before `before_id`."""
        with self._lock:
            ids = [b.id for b in sorted(self._batches.values(), key=lambda b: -b.schedule.seq)]
        if after_id is not None and before_id is not None:
            raise AnthropicError(400, "Only one of after_id and before_id may be given.")
        if after_id is not None:
            start = self._cursor(ids, after_id, "after_id") + 1
            page, has_more = ids[start : start + limit], start + limit < len(ids)
        elif before_id is not None:
            end = self._cursor(ids, before_id, "before_id")
            page, has_more = ids[max(0, end - limit) : end], end - limit > 0
        else:
            page, has_more = ids[:limit], limit < len(ids)
        data = [self.retrieve(i, base_url) for i in page]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def delete(self, batch_id: str) -> JsonDict:
        """DELETE .../{id}: forget an ended batch and its files (400 while it runs)."""
        batch = self._batch(batch_id)
        if self._observe(batch, "")["processing_status"] != "ended":
            message = f"Message batch {batch_id} has not ended: cancel it and wait before deleting."
            raise AnthropicError(400, message)
        with self._lock:
            self._batches.pop(batch_id, None)
        batch.schedule.input_path.unlink(missing_ok=True)
        batch.results_path.unlink(missing_ok=True)
        return {"id": batch_id, "type": "message_batch_deleted"}

    def open_results(self, batch_id: str) -> BinaryIO:
        """The results file of an ended batch, opened for streaming (400 before it ends)."""
        batch = self._batch(batch_id)
        if self._observe(batch, "")["processing_status"] != "ended":
            raise AnthropicError(400, f"Message batch {batch_id} has not ended yet.")
        return batch.results_path.open("rb")

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _cursor(ids: list[str], cursor: str, name: str) -> int:
        if cursor not in ids:
            raise AnthropicError(400, f"{name}: no message batch '{cursor}'")
        return ids.index(cursor)

    def _batch(self, batch_id: str) -> MessageBatch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise AnthropicError(404, f"message batch '{batch_id}' not found")
        return batch

    def _observe(self, batch: MessageBatch, base_url: str) -> JsonDict:
        """The batch object now, writing its results file on the first sight of `ended`."""
        schedule = batch.schedule
        snap = schedule.snapshot(schedule.now())
        if snap.status in WITH_RESULTS and batch.counts is None:
            with batch.lock, schedule.lock:
                # recompute under the locks: a cancel may have landed since the first look
                snap = schedule.snapshot(schedule.now())
                if batch.counts is None and snap.status in WITH_RESULTS:
                    batch.counts = write_results(batch, snap)
        return batch.to_json(snap, base_url)


def write_results(batch: MessageBatch, snap: Snapshot) -> dict[str, int]:
    """Stream the results JSONL of an ended batch in a seeded shuffled order; the tallies."""
    schedule = batch.schedule
    order = list(range(schedule.plan.total))
    # Anthropic returns results in any order: clients must key on custom_id
    random.Random(f"{schedule.config.seed}:{batch.id}").shuffle(order)
    counts = dict.fromkeys(RESULT_TYPES, 0)
    sink = JsonlSink(batch.results_path)
    with schedule.input_path.open("rb") as src:
        for index in order:
            # requests not reached before a cancel end as canceled
            outcome = batch.outcomes[index] if index < snap.processed else am.CANCELED
            params = None
            if outcome not in (am.CANCELED, am.EXPIRED):
                src.seek(schedule.plan.offsets[index])
                params = json.loads(src.readline())["params"]
            result = am.batch_result(outcome, params)
            counts[result["type"]] += 1
            sink.write({"custom_id": schedule.plan.custom_ids[index], "result": result})
    sink.close()
    return counts
