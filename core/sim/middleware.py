"""How the simulator's answers and errors leave it: JSON responses, auth, faults, error pages.

Random faults (`SimConfig.fault_rate`) are injected by `FaultMiddleware` *before* any handler
runs, which is what guarantees a fault never leaves a side effect behind. Every error, ours
or Starlette's, is rendered as an OpenAI error body, or in Anthropic's shape on the
Anthropic paths (core/sim/anthropic_errors.py). Every response carries a `request-id`.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchdash.core.sim.anthropic_errors import for_path, is_anthropic
from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict, SimError, error_body

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


# --- responses --------------------------------------------------------------------------


def retry_headers(config: SimConfig) -> dict[str, str]:
    """Headers sent with every simulated 429/5xx: `retry-after: 0`, plus `retry-after-ms`."""
    headers = {"retry-after": "0"}
    if config.retry_after_ms is not None:
        headers["retry-after-ms"] = str(config.retry_after_ms)
    return headers


def json_response(config: SimConfig, status: int, body: JsonDict) -> JSONResponse:
    """A JSON answer; retryable statuses get the retry headers."""
    retryable = status == 429 or status >= 500
    return JSONResponse(
        body, status_code=status, headers=retry_headers(config) if retryable else None
    )


# --- faults -----------------------------------------------------------------------------


class AuthMiddleware:
    """Answers 401 to `/v1/...` requests without the configured key (when one is set)."""

    def __init__(self, app: ASGIApp, config: SimConfig) -> None:
        """Wrap `app`; checks keys against `config.api_key`."""
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if self._authorized(scope):
            await self.app(scope, receive, send)
            return
        error = for_path(scope["path"], SimError.invalid_api_key())
        await json_response(self.config, error.status, error.body())(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        key = self.config.api_key
        if scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            return True
        if is_anthropic(scope["path"]):
            return _anthropic_key_ok(scope, key)
        return key is None or (b"authorization", f"Bearer {key}".encode()) in scope["headers"]


def _anthropic_key_ok(scope: Scope, key: str | None) -> bool:
    """Anthropic wants a key in `x-api-key` or `Authorization: Bearer` (newer SDKs) always;
    when the simulator has one configured, it must be that one."""
    headers = dict(scope["headers"])
    bearer = headers.get(b"authorization", b"")
    given = [headers.get(b"x-api-key", b"")]
    if bearer.startswith(b"Bearer "):
        given.append(bearer.removeprefix(b"Bearer "))
    if key is None:
        return any(given)
    return key.encode() in given


class FaultMiddleware:
    """Answers a seeded fraction of `/v1/...` requests with 429, 500 or 503.

    It runs before routing, so the handler (and any state change) never happens for a
    faulted request. The draws come from one `random.Random(seed)`, so the same sequence of
    requests meets the same faults on every run.
    """

    def __init__(self, app: ASGIApp, config: SimConfig) -> None:
        """Wrap `app`; faults at `config.fault_rate`."""
        self.app = app
        self.config = config
        self.rng = random.Random(config.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        fault = self._draw(scope)
        if fault is None:
            await self.app(scope, receive, send)
            return
        fault = for_path(scope["path"], fault)
        await json_response(self.config, fault.status, fault.body())(scope, receive, send)

    def _draw(self, scope: Scope) -> SimError | None:
        if scope["type"] != "http" or self.config.fault_rate <= 0:
            return None
        if not str(scope["path"]).startswith("/v1/"):
            return None  # /health stays reliable so readiness probes do not flake
        if self.rng.random() >= self.config.fault_rate:
            return None
        kind = self.rng.choice((SimError.rate_limited, SimError.server_error, SimError.overloaded))
        return kind()


class RequestIdMiddleware:
    """Adds a fresh `request-id` header to every HTTP response, as Anthropic does."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app`."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ("req_sim_" + secrets.token_hex(12)).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"request-id", request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def exception_handlers(config: SimConfig) -> dict[type[Exception], ExceptionHandler]:
    """Render every error as an OpenAI error body (never Starlette's plain-text pages)."""

    async def on_sim_error(request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, SimError) else SimError.server_error()
        error = for_path(request.url.path, error)
        return json_response(config, error.status, error.body())

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            # OpenAI's wording for unknown routes, e.g. GET /v1/files//content
            body = error_body(
                f"Invalid URL ({request.method} {request.url.path})", "invalid_request_error"
            )
        else:
            detail = exc.detail if isinstance(exc, HTTPException) else "error"
            body = error_body(
                str(detail), "invalid_request_error" if status < 500 else "server_error"
            )
        if is_anthropic(request.url.path):
            message = body["error"]["message"]
            body = for_path(request.url.path, SimError(status, message)).body()
        return json_response(config, status, body)

    async def on_crash(request: Request, exc: Exception) -> Response:
        error = for_path(request.url.path, SimError.server_error())
        return json_response(config, 500, error.body())

    return {SimError: on_sim_error, HTTPException: on_http_error, Exception: on_crash}
