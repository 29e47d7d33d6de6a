"""The simulator's endpoints: files, batches and the real-time model routes, bound to a store.

Handlers parse and check the request, call `SimStore` in Starlette's thread pool (its methods
block on disk), and answer JSON; errors are raised as `SimError`s and rendered by
core/sim/middleware.py. The `ambiguous_create` quirk and `SimConfig.lost_response_rate` are
the deliberate exceptions to "an error answer means nothing happened".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import BinaryIO, Final

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from batchdash.core.sim import answers, quirks
from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict, SimError
from batchdash.core.sim.middleware import json_response
from batchdash.core.sim.store import COPY_CHUNK, SimStore

MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
"""OpenAI's per-file upload limit (batch input files are further limited to 200 MB)."""
SIM_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")

Handler = Callable[[Request], Awaitable[Response]]


async def _json_object(request: Request) -> JsonDict:
    """The request body as a JSON object, or a 400 worded like OpenAI's."""
    try:
        value = json.loads(await request.body())
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SimError.invalid(
            "We could not parse the JSON body of your request. The body must be a JSON object."
        )
    return value


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    """Query parameter `name` as an integer in [low, high], or a 400 worded like OpenAI's."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SimError.invalid(
            f"Invalid '{name}': expected an integer.", name, "invalid_type"
        ) from None
    if not low <= value <= high:
        message = f"Invalid '{name}': integer must be between {low} and {high}, got {value}."
        raise SimError.invalid(message, name, "integer_out_of_range")
    return value


def file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Read a file in fixed-size chunks (Starlette runs this iterator in its thread pool)."""
    with handle:
        while chunk := handle.read(COPY_CHUNK):
            yield chunk


# --- handlers ---------------------------------------------------------------------------


class SimApi:
    """The endpoint handlers, bound to one store."""

    def __init__(self, store: SimStore, config: SimConfig) -> None:
        """Serve `store`; lost responses drawn from their own seeded generator."""
        self.store = store
        self.config = config
        self.lost = random.Random(config.seed + 1)

    def lose_response(self) -> None:
        """After a side effect: answer 500 anyway at `lost_response_rate` (a lost response)."""
        if self.config.lost_response_rate > 0 and (
            self.lost.random() < self.config.lost_response_rate
        ):
            raise SimError.server_error()

    def routes(self) -> list[Route]:
        """Every route of the simulator, bound to these handlers."""
        model_routes = [
            Route(endpoint, self._model_handler(endpoint), methods=["POST"])
            for endpoint in sorted(answers.ANSWERED_ENDPOINTS)
        ]
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/files", self.upload_file, methods=["POST"], max_body_size=MAX_UPLOAD_BYTES),
            Route("/v1/files", self.list_files, methods=["GET"]),
            Route("/v1/files/{file_id}", self.retrieve_file, methods=["GET"]),
            Route("/v1/files/{file_id}", self.delete_file, methods=["DELETE"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/batches", self.create_batch, methods=["POST"]),
            Route("/v1/batches", self.list_batches, methods=["GET"]),
            Route("/v1/batches/{batch_id}", self.retrieve_batch, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self.cancel_batch, methods=["POST"]),
            *model_routes,
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "sim"} for m in SIM_MODELS]
        return JSONResponse({"object": "list", "data": data})

    # -- files ---------------------------------------------------------------------------

    async def upload_file(self, request: Request) -> Response:
        # Starlette spools multipart files to disk above 1 MB, and add_file copies in chunks
        async with request.form() as form:
            upload = form.get("file")
            purpose = form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise SimError.missing("file")
            if not isinstance(purpose, str):
                raise SimError.missing("purpose")
            name = upload.filename or "upload.jsonl"
            created = await run_in_threadpool(self.store.add_file, upload.file, name, purpose)
        self.lose_response()
        return JSONResponse(created)

    async def list_files(self, request: Request) -> Response:
        limit = _int_query(request, "limit", 10_000, 1, 10_000)
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise SimError.invalid(
                "Invalid 'order': expected 'asc' or 'desc'.", "order", "invalid_value"
            )
        purpose = request.query_params.get("purpose")
        after = request.query_params.get("after")
        page = await run_in_threadpool(self.store.list_files, purpose, limit, after, order)
        return JSONResponse(page)

    async def retrieve_file(self, request: Request) -> Response:
        stored = await run_in_threadpool(self.store.get_file, request.path_params["file_id"])
        return JSONResponse(stored.to_json())

    async def delete_file(self, request: Request) -> Response:
        deleted = await run_in_threadpool(self.store.delete_file, request.path_params["file_id"])
        return JSONResponse(deleted)

    async def file_content(self, request: Request) -> Response:
        handle = await run_in_threadpool(self.store.open_content, request.path_params["file_id"])
        size = os.fstat(handle.fileno()).st_size
        return StreamingResponse(
            file_chunks(handle),
            media_type="application/octet-stream",
            headers={"content-length": str(size)},
        )

    # -- batches -------------------------------------------------------------------------

    async def create_batch(self, request: Request) -> Response:
        params = await _json_object(request)
        batch = await run_in_threadpool(self.store.create_batch, params)
        if quirks.batch_quirk(batch.get("metadata")) is quirks.BatchQuirk.AMBIGUOUS_CREATE:
            # the provider accepted the batch but the answer is lost: clients must reconcile
            raise SimError.server_error()
        self.lose_response()
        return JSONResponse(batch)

    async def list_batches(self, request: Request) -> Response:
        limit = _int_query(request, "limit", 20, 1, 100)
        after = request.query_params.get("after")
        return JSONResponse(await run_in_threadpool(self.store.list_batches, limit, after))

    async def retrieve_batch(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        return JSONResponse(await run_in_threadpool(self.store.retrieve_batch, batch_id))

    async def cancel_batch(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        return JSONResponse(await run_in_threadpool(self.store.cancel_batch, batch_id))

    # -- model endpoints -----------------------------------------------------------------

    def _model_handler(self, endpoint: str) -> Handler:
        async def handle(request: Request) -> Response:
            body = await _json_object(request)
            delay_ms = quirks.slow_ms(answers.request_text(endpoint, body))
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            status, payload = answers.answer(
                endpoint, body, created=int(time.time()), embedding_dim=self.config.embedding_dim
            )
            return json_response(self.config, status, payload)

        return handle
