"""How `batches list` and `batches show` describe a batch in plain text."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from batchdash.core.models import Batch, BatchState
from batchdash.tui.fmt import age, count, duration, money, one_line
from batchdash.tui.once import batch_error_text


def batch_note(batch: Batch, now: float) -> str:
    """The NOTE of a batch: its poll error, or shard, resubmit and lingering notes."""
    if batch.poll_error:
        return one_line(f"error: {batch.poll_error}", 60)
    notes = []
    if batch.shard_count:
        notes.append(f"shard {(batch.shard_index or 0) + 1}/{batch.shard_count}")
    if batch.parent_id:
        notes.append(f"resubmit of {batch.parent_id}")
    lingering = _lingering(batch, now)
    if lingering:
        notes.append(lingering)
    return ", ".join(notes)


def _lingering(batch: Batch, now: float) -> str:
    """'finalizing for 3m' / 'cancelling for 25m' while the provider is slow to finish."""
    since = {
        BatchState.FINALIZING.value: batch.finalizing_at,
        BatchState.CANCELLING.value: batch.cancelling_at,
    }.get(batch.state)
    if since is None or batch.ingested_at is not None:
        return ""
    return f"{batch.state} for {duration(now - since)}"


def describe_batch(
    batch: Batch,
    outcomes: dict[str, int],
    children: list[int],
    now: float,
    tags: Sequence[str] = (),
) -> Iterator[str]:
    """The lines of `batches show`: ids, state, tags, links, files, counts, times, errors."""
    yield f"batch {batch.id}  remote {batch.remote_id or '-'}  queue {batch.queue}"
    yield f"state {batch.state}  (provider status: {batch.raw_status or '-'})"
    yield f"endpoint {batch.endpoint}  model {batch.model or '-'}"
    if tags:
        yield f"tags {' '.join(tags)}"
    links = batch_note(batch, now) if not batch.poll_error else ""
    if children:
        links = ", ".join(filter(None, [links, f"resubmitted as {children}"]))
    if links:
        yield links
    yield (
        f"files: input {batch.input_file_id or '-'}  output {batch.output_file_id or '-'}  "
        f"error {batch.error_file_id or '-'}"
    )
    yield (
        f"requests: total {count(batch.total)}  completed {count(batch.completed)}  "
        f"failed {count(batch.failed)}"
    )
    if outcomes:
        yield "outcomes: " + "  ".join(f"{k} {count(v)}" for k, v in sorted(outcomes.items()))
    yield (
        f"tokens: in {count(batch.input_tokens)}  out {count(batch.output_tokens)}  "
        f"cost {money(batch.cost)}"
    )
    for name in (
        "created_at",
        "in_progress_at",
        "finalizing_at",
        "cancelling_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelled_at",
        "expires_at",
        "ingested_at",
    ):
        value = getattr(batch, name)
        if value:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
            yield f"  {name[:-3]:<12} {when}  ({_relative(now, value)})"
    for error in batch.errors or []:
        yield one_line(f"error: {batch_error_text(error)}", 200)
    if batch.polled_at:
        yield f"last polled {age(now - batch.polled_at)} ago"
    if batch.poll_error:
        yield one_line(f"poll error ({batch.poll_failures}x): {batch.poll_error}", 200)


def _relative(now: float, when: float) -> str:
    return f"in {age(when - now)}" if when > now else f"{age(now - when)} ago"
