"""Domain vocabulary shared by every part of batchdash: states, jobs, workers, events.

Plain dataclasses and string enums only; no I/O happens here, so the read path
(`batchdash --once`) and the dashboard can import this cheaply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Lifecycle of a job: pending → running → succeeded | failed | cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses a job never leaves on its own.
TERMINAL_JOB_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

#: Queues of QA batches are named `qa:<queue of the judged jobs>`; their spend is QA spend.
QA_QUEUE_PREFIX = "qa:"

#: `QueueInfo.pause_reason` values.
PAUSE_MANUAL = "manual"
PAUSE_BUDGET = "budget"


class WorkerState(StrEnum):
    """What a worker process is doing, as last reported or as inferred from its heartbeat."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    STALE = "stale"
    DEAD = "dead"


class BatchState(StrEnum):
    """Normalized state of a remote batch; the provider's raw status is kept beside it."""

    SUBMITTING = "submitting"
    VALIDATING = "validating"
    RUNNING = "running"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


ACTIVE_BATCH_STATES = frozenset(
    {
        BatchState.SUBMITTING,
        BatchState.VALIDATING,
        BatchState.RUNNING,
        BatchState.FINALIZING,
        BatchState.CANCELLING,
        BatchState.UNKNOWN,
    }
)


class ItemOutcome(StrEnum):
    """Outcome of one line of a remote batch, keyed by custom_id."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    NON_2XX = "non_2xx"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue: its key is unique within the queue (enqueueing is idempotent on it)."""

    key: str
    payload: Any
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None  # seconds an attempt may run (None: the worker's default)
    tags: tuple[str, ...] = ()  # labels for filtering (`tag:x`), beside `enqueue --tag`'s


@dataclass(slots=True)
class Job:
    """One unit of LLM work as stored, with its current attempt and outcome."""

    id: int
    queue: str
    key: str
    handler: str
    payload: Any
    status: str
    priority: int
    attempts: int
    max_attempts: int
    run_after: float
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    claim_token: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    result: Any = None
    error: str | None = None
    error_kind: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    batch_id: int | None = None
    timeout: float | None = None
    #: The config file's `[endpoints.NAME]` its handler calls (None: the SDK's default).
    endpoint_name: str | None = None
    #: What a running job's handler last reported (`job.stage`, `job.progress`).
    stage: str | None = None
    progress: float | None = None
    progress_note: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran, when it has both a start and an end."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (used by `--json` output and export)."""
        return {
            "id": self.id,
            "key": self.key,
            "queue": self.queue,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "handler": self.handler,
            "priority": self.priority,
            "worker_id": self.worker_id,
            "batch_id": self.batch_id,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "run_after": self.run_after,
            "error": self.error,
            "error_kind": self.error_kind,
            "stage": self.stage,
            "progress": self.progress,
            "progress_note": self.progress_note,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "payload": self.payload,
            "result": self.result,
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """A job handed to a worker: the token fences its completion against later claims."""

    job_id: int
    queue: str
    key: str
    handler: str
    payload: Any
    attempts: int
    max_attempts: int
    token: str
    timeout: float | None = None
    endpoint_name: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One row of a job's (or batch's) append-only timeline."""

    id: int
    at: float
    kind: str
    job_id: int | None
    batch_id: int | None
    worker_id: str | None
    detail: str | None
    #: The queue it concerns (set on queue events such as pause and resume too).
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What a heartbeat tells its worker: held jobs to abort, and whether to drain and stop."""

    cancel: list[int] = field(default_factory=list)
    stop: bool = False  # `workers stop` asked, from any host, through the database


@dataclass(slots=True)
class Worker:
    """A local worker process as recorded by its heartbeats."""

    id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    heartbeat_interval: float
    state: str
    queues: list[str] = field(default_factory=list)
    handler: str = ""
    concurrency: int = 1
    current_jobs: list[int] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    stopped_at: float | None = None
    note: str | None = None  # e.g. "loop blocked 12s by job 42 (key)"

    def heartbeat_age(self, now: float) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, now - self.heartbeat_at)

    def to_dict(self, now: float) -> dict[str, Any]:
        """A JSON-ready dict with stable keys."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
            "queues": self.queues,
            "handler": self.handler,
            "concurrency": self.concurrency,
            "current_jobs": self.current_jobs,
            "done": self.done,
            "failed": self.failed,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "heartbeat_age": round(self.heartbeat_age(now), 3),
            "heartbeat_interval": self.heartbeat_interval,
            "stopped_at": self.stopped_at,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue with its pause flag, job counts per status, budget and spend."""

    name: str
    paused: bool
    counts: dict[str, int]
    #: USD the queue may spend (work plus QA); None: no budget.
    budget_usd: float | None = None
    #: Why it is paused: "manual" (`queue pause`) or "budget"; None while it runs.
    pause_reason: str | None = None
    #: USD spent: its jobs' cost (local and ingested remote lines) plus its QA verdicts'.
    spend_usd: float = 0.0

    @property
    def budget_reached(self) -> bool:
        """True when it has a budget and its spend has reached it."""
        return self.budget_usd is not None and self.spend_usd >= self.budget_usd

    @property
    def total(self) -> int:
        """All jobs in the queue, whatever their status."""
        return sum(self.counts.values())


def dumps(value: Any) -> str:
    """Compact, deterministic JSON for storing payloads and results."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to show or act on; every field narrows the selection (None = any).

    `key_glob` uses shell-style wildcards (`abc*`); `score_below`/`score_above` compare the
    job's lowest/highest QA overall score. `providers` selects the work sent to those
    providers: jobs of their batches, and local jobs run by the handler of that name.
    `tags` selects jobs carrying any of them; `created_after`/`created_before` bound the
    time a job was created (`--since` inclusive, `--until` exclusive).
    """

    statuses: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    key_glob: str | None = None
    batch_id: int | None = None
    worker_id: str | None = None
    text: str | None = None
    score_below: float | None = None
    score_above: float | None = None
    providers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    created_after: float | None = None
    created_before: float | None = None

    @property
    def is_empty(self) -> bool:
        """True when the filter selects every job."""
        return self == JobFilter()


@dataclass(slots=True)
class Batch:
    """A remote provider batch as tracked locally (raw status kept verbatim)."""

    id: int
    provider: str
    remote_id: str | None
    submit_key: str | None
    queue: str
    endpoint: str
    model: str | None
    state: str
    raw_status: str | None
    total: int = 0
    completed: int = 0
    failed: int = 0
    input_path: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: Any = None
    metadata: Any = None
    parent_id: int | None = None
    shard_index: int | None = None
    shard_count: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    remote_created_at: float | None = None
    in_progress_at: float | None = None
    expires_at: float | None = None
    finalizing_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    expired_at: float | None = None
    cancelling_at: float | None = None
    cancelled_at: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    poll_error: str | None = None
    polled_at: float | None = None
    next_poll_at: float | None = None
    poll_failures: int = 0
    ingested_at: float | None = None
    poll_owner: str | None = None
    poll_lease_until: float | None = None
    base_url: str | None = None
    unreachable_since: float | None = None
    #: The config file's `[endpoints.NAME]` every call on it goes through (None: default).
    endpoint_name: str | None = None
    #: The provider's own per-outcome counts (Anthropic's processing, succeeded, errored,
    #: canceled, expired) as it last reported them; None where it has none.
    request_counts: dict[str, int] | None = None

    @property
    def active(self) -> bool:
        """True while the provider may still change the batch."""
        return self.state in ACTIVE_BATCH_STATES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One line of a remote batch and what became of it."""

    batch_id: int
    custom_id: str
    job_id: int | None
    line_no: int | None
    outcome: str
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


#: The filter that selects every job.
ALL_JOBS = JobFilter()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one claimed attempt ended, as reported by its worker.

    `status` is the job's next status: succeeded, failed, cancelled, or pending (a retry
    at `run_after`). The result is already JSON text, so a value that cannot be stored is
    caught by the worker, not halfway through a transaction. The update is fenced by
    `token`: it applies only if the job is still running under that claim.
    """

    job_id: int
    token: str
    status: str
    finished_at: float
    result_json: str | None = None
    error: str | None = None
    error_kind: str | None = None
    run_after: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    event: str = ""
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens and dollars of one kind of spend."""

    input_tokens: int
    output_tokens: int
    cost: float
