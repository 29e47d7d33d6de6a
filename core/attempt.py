"""One attempt at one claimed job: run its handler and turn what happened into an outcome.

A job's faults stay with its attempt: a handler that raises anything (even SystemExit or
KeyboardInterrupt), runs past its timeout, or returns a result over the size cap fails
that attempt, never the worker or the jobs beside it. Failures are logged to the worker's
log, tagged with the worker's id like the rest of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from batchdash.core import queue
from batchdash.core.handlers import (
    HandlerResult,
    JobContext,
    PermanentError,
    RetryableError,
    UnknownHandlerError,
    resolve,
)
from batchdash.core.models import Claim, Outcome
from batchdash.core.stages import AttemptId, StageReporter, StageTracker, describe

if TYPE_CHECKING:
    from batchdash.core.worker import WorkerOptions

log = logging.getLogger("batchdash.worker")


async def run_attempt(
    claimed: Claim, options: WorkerOptions, reporter: StageReporter | None = None
) -> Outcome:
    """Run the handler once and turn what happened into an outcome.

    Its stages and progress go to `reporter`; a failure inside a stage names the stage
    in the job's error (`stage generate_notes: TimeoutError: …`).
    """
    attempt = AttemptId(claimed.job_id, claimed.token, claimed.queue, claimed.attempts)
    tracker = StageTracker(reporter, attempt)
    context = JobContext(
        id=claimed.job_id,
        key=claimed.key,
        queue=claimed.queue,
        payload=claimed.payload,
        attempt=claimed.attempts,
        max_attempts=claimed.max_attempts,
        sim=options.sim,
        endpoint_name=claimed.endpoint_name,
        tracker=tracker,
    )
    limit = claimed.timeout or options.job_timeout
    try:
        handler = resolve(claimed.handler)
        value = await _within(limit, handler(context))
    except RetryableError as exc:
        error = _in_stage(tracker, exc, str(exc))
        return _failed(
            claimed, options, error, kind=exc.kind, retryable=True, retry_after=exc.retry_after
        )
    except (PermanentError, UnknownHandlerError) as exc:
        kind = getattr(exc, "kind", "handler")
        return _failed(
            claimed, options, _in_stage(tracker, exc, str(exc)), kind=kind, retryable=False
        )
    except asyncio.CancelledError:
        raise  # the worker's own cancel (user cancel, drain): the worker handles it
    except Exception as exc:  # a handler bug: keep the worker alive, retry the job
        error = _in_stage(tracker, exc, describe(exc))
        return _failed(claimed, options, error, kind=type(exc).__name__, retryable=True)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt…: only the worker's own signal handling may stop
        # it, so a handler that raises one just fails its attempt.
        return _failed(
            claimed,
            options,
            _in_stage(tracker, exc, f"handler raised {describe(exc)}"),
            kind="handler_exit",
            retryable=True,
        )
    return _success(claimed, value, options)


def _in_stage(tracker: StageTracker, exc: BaseException, error: str) -> str:
    """The error, prefixed `stage NAME: ` when the exception failed (or came from) a stage."""
    stage = tracker.failed_stage(exc)
    return f"stage {stage}: {error}" if stage else error


def _success(claimed: Claim, value: Any, options: WorkerOptions) -> Outcome:
    """A return value as an outcome; one JSON cannot hold, or too large, fails the job."""
    usage = queue.Usage()
    if isinstance(value, HandlerResult):
        usage = queue.Usage(value.input_tokens, value.output_tokens, value.cost)
        value = value.result
    try:
        outcome = queue.succeeded(claimed, value, usage)
    except (TypeError, ValueError) as exc:
        return _failed(
            claimed,
            options,
            f"result is not JSON-serialisable: {exc}",
            kind="bad_result",
            retryable=False,
            usage=usage,
        )
    size = len(outcome.result_json or "")
    if size > options.max_result_chars:
        # Stored, it would fail the whole transaction (and the jobs reported with it).
        return _failed(
            claimed,
            options,
            f"result of {size:,} characters is over the worker's limit of "
            f"{options.max_result_chars:,} (--max-result-chars)",
            kind="result_too_large",
            retryable=False,
            usage=usage,
        )
    return outcome


def _failed(
    claimed: Claim,
    options: WorkerOptions,
    error: str,
    *,
    kind: str,
    retryable: bool,
    retry_after: float | None = None,
    usage: queue.Usage | None = None,
) -> Outcome:
    """A failed attempt's outcome (a retry or the end), its error text capped, logged."""
    outcome = queue.failed(
        claimed,
        _clip(error, options.max_error_chars),
        kind=kind,
        retryable=retryable,
        policy=options.retry,
        retry_after=retry_after,
        usage=usage,
    )
    log.warning("job %d (%s): %s", claimed.job_id, claimed.key, outcome.detail)
    return outcome


async def _within(limit: float | None, work: Awaitable[Any]) -> Any:
    """Await `work` in this task, cancelled after `limit` seconds (None: no limit).

    A timeout is a retryable failure of kind `timeout`; a TimeoutError the handler raises
    itself stays its own error.
    """
    timer = asyncio.timeout(limit)
    try:
        async with timer:
            return await work
    except TimeoutError:
        if timer.expired():
            raise RetryableError(f"no result within {limit:g}s", kind="timeout") from None
        raise


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated: {len(text):,} characters in all]"
