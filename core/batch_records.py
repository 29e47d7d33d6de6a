"""Remote-batch records handed to the store: a batch row to insert, a line's result, errors.

Write-side counterparts of `core.models.Batch` and `BatchItem`: plain frozen dataclasses
with no I/O (the SQL an `ErrorMatch` stands for lives in the SQLite back end). The batch
transactions (`core.batches`, `core.batch_results`) build them; the store's ports take them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch row to insert before anything is sent to the provider (or when importing)."""

    queue: str
    endpoint: str
    model: str | None
    submit_key: str | None = None
    remote_id: str | None = None
    state: str = "submitting"
    raw_status: str | None = None
    input_path: str | None = None
    input_file_id: str | None = None
    metadata: dict[str, str] | None = None
    total: int = 0
    parent_id: int | None = None
    shard_index: int | None = None
    shard_count: int | None = None
    provider: str = "openai"
    base_url: str | None = None
    endpoint_name: str | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What one result-file line (or reconciliation) says about one custom_id."""

    custom_id: str
    outcome: str
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_json: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorMatch:
    """Batch-item errors to single out: any of these HTTP statuses or error codes."""

    status_codes: tuple[int, ...] = ()
    error_codes: tuple[str, ...] = ()
