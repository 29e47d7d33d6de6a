"""The Anthropic endpoints of the simulator: `POST /v1/messages` and `/v1/messages/batches...`.

Mounted on the same app as the OpenAI routes (core/sim/server.py), so auth, random faults,
the `request-id` header and error rendering (in Anthropic's shape for these paths) come from
core/sim/middleware.py. Store calls run in Starlette's thread pool: they block on disk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from batchdash.core.sim import anthropic_messages as am
from batchdash.core.sim import quirks
from batchdash.core.sim.anthropic_batches import AnthropicStore
from batchdash.core.sim.anthropic_errors import AnthropicError
from batchdash.core.sim.errors import JsonDict
from batchdash.core.sim.routes import file_chunks

TOO_LARGE: Final = "Request exceeds the maximum allowed number of bytes."

BATCHES: Final = "/v1/messages/batches"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, or 413 request_too_large once it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise AnthropicError(413, TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise AnthropicError(413, TOO_LARGE)
    return bytes(body)


def _base_url(request: Request) -> str:
    """Scheme and host the client used, for the absolute `results_url`."""
    return str(request.base_url).rstrip("/")


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise AnthropicError(400, f"limit: Input should be an integer from 1 to 1000, got {raw!r}")
    return int(raw)


class AnthropicApi:
    """The Anthropic handlers, bound to one store."""

    def __init__(self, store: AnthropicStore, lose_response: Callable[[], None]) -> None:
        """Serve `store`; `lose_response` may turn a done create into a 500 (lost answer)."""
        self.store = store
        self.config = store.config
        self.lose_response = lose_response

    def routes(self) -> list[Route]:
        """Every Anthropic route."""
        return [
            Route("/v1/messages", self.create_message, methods=["POST"]),
            Route(BATCHES, self.create_batch, methods=["POST"]),
            Route(BATCHES, self.list_batches, methods=["GET"]),
            Route(BATCHES + "/{batch_id}", self.retrieve_batch, methods=["GET"]),
            Route(BATCHES + "/{batch_id}", self.delete_batch, methods=["DELETE"]),
            Route(BATCHES + "/{batch_id}/cancel", self.cancel_batch, methods=["POST"]),
            Route(BATCHES + "/{batch_id}/results", self.batch_results, methods=["GET"]),
        ]

    async def create_message(self, request: Request) -> Response:
        """POST /v1/messages: the deterministic answer, or the error a marker asks for."""
        try:
            params = json.loads(await _body(request, self.config.anthropic_max_bytes))
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise AnthropicError(400, "The request body is not a valid JSON object.")
        problem = am.params_problem(params)
        if problem is not None:
            raise AnthropicError(400, problem)
        text = am.marker_text(params)
        failure = quirks.anthropic_failure(text)
        if failure is not None:
            status, error_type = failure
            raise AnthropicError(status, f"Simulated {error_type} (SIM_FAIL marker).", error_type)
        delay_ms = quirks.slow_ms(text)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        return JSONResponse(am.message(params))

    async def create_batch(self, request: Request) -> Response:
        """POST /v1/messages/batches."""
        body = await _body(request, self.config.anthropic_max_bytes)
        batch = await run_in_threadpool(self.store.create, body, _base_url(request))
        self.lose_response()
        return JSONResponse(batch)

    async def list_batches(self, request: Request) -> Response:
        """GET /v1/messages/batches: newest first, `limit`, `after_id` / `before_id`."""
        query = request.query_params
        page: JsonDict = await run_in_threadpool(
            self.store.list_batches,
            _limit(request),
            query.get("after_id"),
            query.get("before_id"),
            _base_url(request),
        )
        return JSONResponse(page)

    async def retrieve_batch(self, request: Request) -> Response:
        """GET /v1/messages/batches/{id}."""
        batch_id = request.path_params["batch_id"]
        return JSONResponse(
            await run_in_threadpool(self.store.retrieve, batch_id, _base_url(request))
        )

    async def cancel_batch(self, request: Request) -> Response:
        """POST /v1/messages/batches/{id}/cancel."""
        batch_id = request.path_params["batch_id"]
        return JSONResponse(
            await run_in_threadpool(self.store.cancel, batch_id, _base_url(request))
        )

    async def delete_batch(self, request: Request) -> Response:
        """DELETE /v1/messages/batches/{id} (only once ended)."""
        batch_id = request.path_params["batch_id"]
        return JSONResponse(await run_in_threadpool(self.store.delete, batch_id))

    async def batch_results(self, request: Request) -> Response:
        """GET /v1/messages/batches/{id}/results: the JSONL results, streamed from disk."""
        handle = await run_in_threadpool(self.store.open_results, request.path_params["batch_id"])
        return StreamingResponse(file_chunks(handle), media_type="application/binary")
