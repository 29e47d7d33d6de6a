"""What a job does: the built-in `sim`, `openai` and `anthropic` handlers, and custom ones by name.

A handler is an async function `handler(job: JobContext) -> Any`. It returns a
JSON-serialisable result (or a `HandlerResult` carrying token usage), or raises
`RetryableError` / `PermanentError`. Any other exception is treated as retryable, since a
bug in one attempt is no proof the next one fails too; its text is stored as the error.

A handler runs on the worker's event loop beside the other jobs in flight, so it must not
block: await async I/O, and run blocking calls with `await asyncio.to_thread(fn, ...)`.
A handler that blocks anyway is reported ("loop blocked 12s by job 42") and its leases
kept alive, but every other job of its worker waits meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from batchdash.core.config import ConfigError
from batchdash.core.endpoints import Endpoint, for_stored
from batchdash.core.errors import InvalidInputError, ProviderError
from batchdash.core.pricing import PriceFileError, price_of
from batchdash.core.providers import _anthropic, _openai
from batchdash.core.retry import retry_after, retryable_status
from batchdash.core.stages import StageTracker


class HandlerError(Exception):
    """Base of the errors a handler raises on purpose."""

    kind = "error"


class RetryableError(HandlerError):
    """The attempt failed but a later one may succeed (rate limit, 5xx, timeout)."""

    kind = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        if kind:
            self.kind = kind


class PermanentError(HandlerError):
    """The job cannot succeed as it is (bad request, 4xx): fail it without retrying."""

    kind = "permanent"

    def __init__(self, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        if kind:
            self.kind = kind


class UnknownHandlerError(InvalidInputError):
    """A handler name that is neither built in nor an importable `module:function`."""


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """A result with the tokens and cost it took."""

    result: Any
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class SimSettings:
    """How the `sim` handler behaves unless a job's payload says otherwise."""

    latency: float = 0.005
    failure_rate: float = 0.0


@dataclass(slots=True)
class JobContext:
    """What a handler sees of its job."""

    id: int
    key: str
    queue: str
    payload: Any
    attempt: int
    max_attempts: int
    sim: SimSettings = field(default_factory=SimSettings)
    #: The config file's `[endpoints.NAME]` the job was enqueued with (None: the default);
    #: a provider handler resolves it with `core.endpoints.for_stored` on every attempt.
    endpoint_name: str | None = None
    #: Where `stage` and `progress` report (the worker sets it; alone it only times).
    tracker: StageTracker = field(default_factory=StageTracker)

    def stage(self, name: str) -> AbstractAsyncContextManager[None]:
        """`async with job.stage("generate_notes"):` records the block as a stage of this
        attempt (start, duration, failure); a failure's error names the stage."""
        return self.tracker.stage(name)

    def progress(self, fraction: float, note: str | None = None) -> None:
        """`job.progress(0.4, "chunk 4/10")`: how far the job is (0..1) and a short note,
        shown while it runs; saved at most once a second, so call it as often as you like."""
        self.tracker.progress(fraction, note)


Handler = Callable[[JobContext], Awaitable[Any]]


# --------------------------------------------------------------------------- sim


def _unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (stable across processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


async def sim_handler(job: JobContext) -> Any:
    """Pretend to call a model: sleep a little, sometimes fail, echo a result.

    A payload may steer it (used by tests and the demo): `{"sim": {"latency": s,
    "fail": "retryable"|"permanent", "fail_attempts": n, "failure_rate": p}}`. Without
    that, `JobContext.sim` applies; failures are deterministic per (job key, attempt).
    `{"stages": ["fetch", ["generate", 2.5], "write"]}` runs those stages in turn (each
    sleeping its own seconds or the latency, reporting progress), failing inside the one
    named by `"sim": {"fail_stage": name}` (default: the last).
    """
    options = job.payload.get("sim", {}) if isinstance(job.payload, dict) else {}
    latency = float(options.get("latency", job.sim.latency))
    stages = _sim_stages(job.payload, latency)
    if not stages:
        await _sim_sleep(latency)
        _sim_fail(job, options)
    fail_stage = options.get("fail_stage", stages[-1][0] if stages else None)
    for done, (name, seconds) in enumerate(stages, 1):
        async with job.stage(name):
            await _sim_sleep(seconds)
            if name == fail_stage:
                _sim_fail(job, options)
        job.progress(done / len(stages), f"{done}/{len(stages)} stages")
    text = str(job.payload)
    tokens_in = max(1, len(text) // 4)
    return HandlerResult(
        result={"output": f"sim:{job.key}", "attempt": job.attempt},
        input_tokens=tokens_in,
        output_tokens=max(1, tokens_in // 2),
        cost=0.0,
    )


def _sim_stages(payload: Any, latency: float) -> list[tuple[str, float]]:
    """The payload's `stages` as (name, seconds); a bad list fails the job for good."""
    stages = payload.get("stages") if isinstance(payload, dict) else None
    if stages is None:
        return []
    try:
        return [(s, latency) if isinstance(s, str) else (str(s[0]), float(s[1])) for s in stages]
    except (TypeError, ValueError, IndexError) as exc:
        raise PermanentError(
            'sim: "stages" must list names or [name, seconds] pairs', kind="payload"
        ) from exc


async def _sim_sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _sim_fail(job: JobContext, options: dict[str, Any]) -> None:
    """Raise the failure the payload (or `JobContext.sim`) asks of this attempt, if any."""
    fail = options.get("fail")
    fail_attempts = int(options.get("fail_attempts", 1_000_000))
    if fail and job.attempt <= fail_attempts:
        if fail == "permanent":
            raise PermanentError(f"sim: permanent failure of {job.key}", kind="sim_permanent")
        raise RetryableError(f"sim: transient failure of {job.key}", kind="sim_transient")
    rate = float(options.get("failure_rate", job.sim.failure_rate))
    if rate > 0 and _unit_hash(job.key, job.attempt) < rate:
        raise RetryableError(f"sim: random failure of {job.key}", kind="sim_transient")


async def noop_handler(job: JobContext) -> Any:
    """Do nothing and succeed at once (benchmarks measure the queue, not the work)."""
    return None


# --------------------------------------------------------------------------- openai


_clients: dict[tuple[str, Endpoint, str], Any] = {}


def _client(job: JobContext, provider: str = "openai") -> Any:
    """One SDK client per provider, endpoint and key per process (it pools connections).

    A missing key or SDK, a bad config file or an endpoint name gone from it fails the job
    for good: no retry can fix it.
    """
    try:
        endpoint = for_stored(f"job {job.id}", job.endpoint_name, provider, None)
        cache_key = (provider, endpoint, endpoint.key())
        client = _clients.get(cache_key)
        if client is None:
            # Retries belong to the queue (backoff, visible attempts), not hidden in the SDK.
            sdk = _anthropic if provider == "anthropic" else _openai
            client = sdk.new_client(retries=0, endpoint=endpoint)
            _clients[cache_key] = client
    except (ConfigError, ProviderError) as exc:
        raise PermanentError(str(exc), kind="config") from exc
    return client


def _request_path(url: str) -> str:
    """`/v1/chat/completions` → `/chat/completions` (the client's base URL ends in /v1)."""
    return url[3:] if url.startswith("/v1/") else url


def _usage(body: Any, model: str | None) -> tuple[int | None, int | None, float | None]:
    """Tokens and cost of a response; what cannot be known locally is None, never an error.

    This runs after the paid call: a local problem (a bad price file, odd usage fields)
    must not fail the job and make the queue pay for the call again.
    """
    tokens_in, tokens_out = _openai.usage_tokens(body)
    cost = None
    if model and tokens_in is not None and tokens_out is not None:
        with contextlib.suppress(PriceFileError):
            cost = price_of(model, tokens_in, tokens_out, batch=False)
    return tokens_in, tokens_out, cost


async def openai_handler(job: JobContext) -> Any:
    """Send a batch-style request `{url, body}` to the configured OpenAI-compatible API."""
    import openai

    payload = job.payload
    if not isinstance(payload, dict) or "url" not in payload or "body" not in payload:
        raise PermanentError("payload must be a batch-style request {url, body}", kind="payload")
    client = _client(job)
    try:
        response = await client.post(
            _request_path(payload["url"]), body=payload["body"], cast_to=object
        )
    except openai.APIStatusError as exc:
        raise _http_error(exc.status_code, f"HTTP {exc.status_code}: {exc.message}", exc) from exc
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise RetryableError(f"{type(exc).__name__}: {exc}", kind="network") from exc
    tokens_in, tokens_out, cost = _usage(response, payload["body"].get("model"))
    return HandlerResult(response, tokens_in, tokens_out, cost)


def _http_error(status: int, message: str, exc: Any, kind: str | None = None) -> HandlerError:
    """What a failed HTTP call makes of the job: retry later (408/409/429/5xx/529, honouring
    retry-after) or fail for good (any other 4xx)."""
    kind = kind or f"http_{status}"
    if retryable_status(status):
        return RetryableError(message, retry_after=retry_after(exc.response.headers), kind=kind)
    return PermanentError(message, kind=kind)


# --------------------------------------------------------------------------- anthropic


_ANTHROPIC_REQUIRED = ("model", "max_tokens", "messages")


def anthropic_params(payload: Any) -> dict[str, Any]:
    """The Messages API parameters of a job: `{"params": {...}}` (a Message Batches line
    without its custom_id) or the parameters themselves."""
    params = payload.get("params", payload) if isinstance(payload, dict) else None
    if not isinstance(params, dict) or not all(k in params for k in _ANTHROPIC_REQUIRED):
        raise PermanentError(
            "payload must be Messages API params {model, max_tokens, messages} "
            'or {"params": {...}}',
            kind="payload",
        )
    return params


async def anthropic_handler(job: JobContext) -> Any:
    """Call the Messages API (`client.messages.create`) with the job's params.

    429/529/5xx are retried by the queue (honouring retry-after), other 4xx fail the job;
    the error kind is the provider's error type (`overloaded_error`...).
    """
    import anthropic

    params = anthropic_params(job.payload)
    client = _client(job, "anthropic")
    try:
        message = await client.messages.create(**params)
    except anthropic.APIStatusError as exc:
        text = _anthropic.describe(exc)
        raise _http_error(exc.status_code, text, exc, _anthropic.error_type(exc)) from exc
    except (anthropic.APITimeoutError, anthropic.APIConnectionError) as exc:
        raise RetryableError(f"{type(exc).__name__}: {exc}", kind="network") from exc
    result = message.model_dump(mode="json")
    tokens_in, tokens_out, cost = _usage(result, result.get("model") or params["model"])
    return HandlerResult(result, tokens_in, tokens_out, cost)


# --------------------------------------------------------------------------- lookup

BUILTIN: dict[str, Handler] = {
    "sim": sim_handler,
    "noop": noop_handler,
    "openai": openai_handler,
    "anthropic": anthropic_handler,
}


def resolve(name: str) -> Handler:
    """The handler for a name: built in, or `package.module:function`."""
    if name in BUILTIN:
        return BUILTIN[name]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownHandlerError(
            f"unknown handler {name!r}: use one of {', '.join(BUILTIN)} or module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownHandlerError(f"handler {name!r}: cannot import {module_name}: {exc}") from exc
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise UnknownHandlerError(f"handler {name!r}: {module_name} has no function {attr!r}")
    handler: Handler = fn
    return handler
