"""Remote-batch transactions that need no network: submission intent, resubmission, import.

`core.providers.openai_batch` does the talking to the provider; this module composes the
store's write functions into the transactions that submission, resubmission and import
need (the rules of an input file are in `core.batch_input`, what results mean in
`core.batch_results`). Nothing here imports `openai`, so the CLI can read the store
without paying for that import.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdash.core.actor import Actor, event_detail
from batchdash.core.batch_input import InputPlan, iter_requests, nonblank_lines
from batchdash.core.batch_records import ErrorMatch, NewBatch
from batchdash.core.batch_results import INGEST_CHUNK
from batchdash.core.db.ports import Tx
from batchdash.core.errors import BatchError
from batchdash.core.models import (
    Batch,
    ItemOutcome,
    JobFilter,
    dumps,
)

#: Metadata key carrying the durable-submission key (found again by `reconcile`).
SUBMIT_KEY_META = "batchdash_submit_key"
SHARD_META = "batchdash_shard"
#: Metadata key (local only) holding when a provider without batch metadata (Anthropic)
#: was first sent `create`: until then nothing can exist remotely, after it `reconcile`
#: looks for the batch by creation time and size.
CREATE_SENT_META = "batchdash_create_sent"


def batch_handler(provider: str) -> str:
    """Handler name shown on jobs a remote batch of `provider` runs (`openai_batch`,
    `anthropic_batch`); workers never claim them (they belong to a batch)."""
    return f"{provider}_batch"


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
    endpoint_name: str | None = None,
    provider: str = "openai",
    tags: Sequence[str] = (),
) -> list[int]:
    """Insert one batch per shard, with its items, jobs and `tags`, in the caller's
    transaction.

    Runs before anything is uploaded: a crash afterwards leaves `submitting` batches that
    `reconcile` finishes, already tagged. A custom_id that already names a job of the queue
    is an error (it would be the same work twice). `provider`, `endpoint_name` and
    `base_url` say where every later call on these batches goes
    (`core.endpoints.batch_endpoint`).
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
            endpoint_name=endpoint_name,
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
                _add_lines(tx, plan.path, batch_id, queue, chunk, now, provider)
                chunk = []
        _add_lines(tx, plan.path, batch_id, queue, chunk, now, provider)
        tx.items.batch_lines_enqueued(batch_id, now)
    if tags:
        tx.tags.tag_batches(ids, tags)
    return ids


def _add_lines(
    tx: Tx,
    path: Path,
    batch_id: int,
    queue: str,
    chunk: Sequence[tuple[int, str, str, str]],
    now: float,
    provider: str,
) -> None:
    existing = tx.items.existing_job_keys(queue, [key for _, _, key, _ in chunk])
    if existing:
        key, job_id = next(iter(existing.items()))
        raise BatchError(
            f"{path}: custom_id {key!r} is already job {job_id} of queue {queue!r} "
            f"({len(existing)} such in this chunk); submit with another --queue"
        )
    tx.items.add_batch_lines(batch_id, queue, batch_handler(provider), chunk, now)


# --------------------------------------------------------------------------- resubmit, import


def _own_metadata(metadata: Any) -> dict[str, str]:
    """User metadata without the keys batchdash manages itself."""
    if not isinstance(metadata, dict):
        return {}
    return {
        str(k): str(v)
        for k, v in metadata.items()
        if k not in (SUBMIT_KEY_META, SHARD_META, CREATE_SENT_META) and v is not None
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


def record_resubmit(
    tx: Tx,
    parent_id: int,
    now: float,
    *,
    include_permanent: bool = False,
    actor: Actor | None = None,
) -> int:
    """Record a child batch of the parent's failed, expired, cancelled and missing lines.

    Lines whose error will not pass on retry are left out unless `include_permanent`; the
    child carries the parent's tags.
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
            base_url=parent.base_url,  # the same endpoint as the parent
            endpoint_name=parent.endpoint_name,
            provider=parent.provider,
        ),
        now,
    )
    leave_out = ErrorMatch() if include_permanent else PERMANENT_ERRORS
    lines = tx.items.resubmit_items(parent.id, child, RESUBMIT_OUTCOMES, now, leave_out=leave_out)
    tx.tags.tag_batches([child], tx.tags.batch_tags([parent.id]).get(parent.id, []))
    detail = event_detail(actor, f"{lines} lines → {child}")
    tx.batches.update_batch(parent.id, {}, now, ("batch_resubmitted", detail))
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
    for _, text in nonblank_lines(path):
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
            tx.items.add_batch_lines(
                batch.id, batch.queue, batch_handler(batch.provider), chunk, now
            )
            chunk = []
    tx.items.add_batch_lines(batch.id, batch.queue, batch_handler(batch.provider), chunk, now)
    tx.items.batch_lines_enqueued(batch.id, now)
    tx.batches.update_batch(batch.id, {"total": tx.items.count_batch_items(batch.id)}, now)
