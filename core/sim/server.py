"""OpenAI-compatible HTTP simulator: the Starlette app, a threaded server for tests, and a CLI.

Point the real SDK at it with `OpenAI(base_url=server.base_url, api_key="sim")`. Endpoints:
`/v1/files` (upload, list, retrieve, content, delete), `/v1/batches` (create, retrieve,
cancel, list), `/v1/chat/completions`, `/v1/embeddings`, `/v1/completions`, `/v1/models`
and `/health`. State lives in `SimStore` (see core/sim/store.py); the behaviour switches are
listed in core/sim/quirks.py and core/sim/README.md.

Random faults (`SimConfig.fault_rate`) are injected by `FaultMiddleware` *before* any handler
runs, which is what guarantees a fault never leaves a side effect behind. The one deliberate
exception is the `ambiguous_create` quirk, which creates the batch and then answers 500.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import BinaryIO, Final

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from batchdash.core.sim import answers, quirks
from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.errors import JsonDict, SimError, error_body
from batchdash.core.sim.store import COPY_CHUNK, SimStore

__all__ = [
    "AuthMiddleware",
    "FaultMiddleware",
    "SimConfig",
    "SimServer",
    "create_app",
    "main",
    "serve",
]

MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
"""OpenAI's per-file upload limit (batch input files are further limited to 200 MB)."""
SIM_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")

Handler = Callable[[Request], Awaitable[Response]]


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


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Read a file in fixed-size chunks (Starlette runs this iterator in its thread pool)."""
    with handle:
        while chunk := handle.read(COPY_CHUNK):
            yield chunk


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
        error = SimError.invalid_api_key()
        await json_response(self.config, error.status, error.body())(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        key = self.config.api_key
        if key is None or scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            return True
        return (b"authorization", f"Bearer {key}".encode()) in scope["headers"]


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


# --- handlers ---------------------------------------------------------------------------


class _Api:
    """The endpoint handlers, bound to one store."""

    def __init__(self, store: SimStore, config: SimConfig) -> None:
        self.store = store
        self.config = config
        self.lost = random.Random(config.seed + 1)

    def _lose_response(self) -> None:
        """After a side effect: answer 500 anyway at `lost_response_rate` (a lost response)."""
        if self.config.lost_response_rate > 0 and (
            self.lost.random() < self.config.lost_response_rate
        ):
            raise SimError.server_error()

    def routes(self) -> list[Route]:
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
        self._lose_response()
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
            _chunks(handle),
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
        self._lose_response()
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


def _exception_handlers(
    config: SimConfig,
) -> dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]]:
    """Render every error as an OpenAI error body (never Starlette's plain-text pages)."""

    async def on_sim_error(request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, SimError) else SimError.server_error()
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
        return json_response(config, status, body)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return json_response(config, 500, SimError.server_error().body())

    return {SimError: on_sim_error, HTTPException: on_http_error, Exception: on_crash}


def create_app(config: SimConfig) -> Starlette:
    """The simulator's ASGI app; its store is reachable as `app.state.store`."""
    store = SimStore(config)
    app = Starlette(
        routes=_Api(store, config).routes(),
        # Like OpenAI, a bad key is refused before anything else can happen.
        middleware=[
            Middleware(AuthMiddleware, config=config),
            Middleware(FaultMiddleware, config=config),
        ],
        exception_handlers=_exception_handlers(config),
    )
    # OpenAI never redirects; a redirect would turn GET /v1/files/ into a file listing
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.config = config
    return app


# --- running it -------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    """uvicorn.Server that calls `on_started` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 lets the OS pick a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it every keep-alive request pays a 40 ms
    # Nagle/delayed-ACK stall
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    # access_log off: stdout must carry nothing but the URL line printed by serve()
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )


class SimServer:
    """The simulator served by uvicorn in a background thread.

    >>> with SimServer(SimConfig(speed=1000)) as sim:
    ...     client = OpenAI(base_url=sim.base_url, api_key="sim")
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        """Prepare (not start) a server; port 0 picks a free port at start()."""
        self.config = config if config is not None else SimConfig()
        self.host = host
        self.requested_port = port
        self.startup_timeout = startup_timeout
        self.app: Starlette | None = None
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no trailing /v1)."""
        if self._url is None:
            raise RuntimeError("SimServer is not running")
        return self._url

    @property
    def base_url(self) -> str:
        """The URL to give the openai SDK: url + "/v1"."""
        return self.url + "/v1"

    @property
    def store(self) -> SimStore:
        """The running app's state (for tests that inspect it)."""
        if self.app is None:
            raise RuntimeError("SimServer is not running")
        store: SimStore = self.app.state.store
        return store

    def start(self) -> SimServer:
        """Bind, start uvicorn in a thread and wait (with a deadline) until it serves."""
        if self._thread is not None:
            raise RuntimeError("SimServer already started")
        sock = _bind(self.host, self.requested_port)
        started = threading.Event()
        self.app = create_app(self.config)
        self._server = _Uvicorn(_uvicorn_config(self.app), started.set)
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock, started), name="batchdash-sim", daemon=True
        )
        self._thread.start()
        # _run sets the event on exit too, so a failed startup wakes us at once
        if not started.wait(self.startup_timeout) or not self._server.started:
            self.stop()
            raise RuntimeError(f"simulator did not start within {self.startup_timeout} s")
        self._url = _url(self.host, sock)
        return self

    @staticmethod
    def _run(server: _Uvicorn, sock: socket.socket, started: threading.Event) -> None:
        try:
            server.run(sockets=[sock])
        finally:
            started.set()
            sock.close()

    def stop(self) -> None:
        """Shut uvicorn down, join its thread and delete the private temp dir. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True  # a SIM_SLOW request may still be sleeping
                self._thread.join(timeout=5)
        if self.app is not None:
            self.app.state.store.close()
        self._server = self._thread = self.app = None
        self._url = None

    def __enter__(self) -> SimServer:
        """Start and return the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Placeholder handler; see _absorb_exit_signals."""


@contextlib.contextmanager
def _absorb_exit_signals() -> Iterator[None]:
    """Let serve() return normally after SIGINT/SIGTERM.

    uvicorn handles those signals itself, then restores the previous handlers and re-raises
    the signal; with the default handlers that would be a KeyboardInterrupt or death by
    SIGTERM. A no-op handler underneath turns the re-raise into nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may touch signal handlers (uvicorn skips them too)
        return
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(host: str = "127.0.0.1", port: int = 0, config: SimConfig | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM.

    Once the server accepts connections, prints exactly one line to stdout, the base URL
    `http://HOST:PORT` (no /v1), and flushes, so a parent process can read it to connect.
    """
    sock = _bind(host, port)
    url = _url(host, sock)
    app = create_app(config if config is not None else SimConfig())
    server = _Uvicorn(_uvicorn_config(app), lambda: print(url, flush=True))
    try:
        with _absorb_exit_signals():
            server.run(sockets=[sock])
    finally:
        sock.close()
        app.state.store.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m batchdash.core.sim` / `batchdash sim-server`: parse flags, then serve()."""
    parser = argparse.ArgumentParser(
        prog="python -m batchdash.core.sim",
        description="OpenAI-compatible Batch API simulator. Prints its URL, then serves.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--speed", type=float, default=1.0, help="time multiplier (default 1.0)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of 429/5xx answers")
    parser.add_argument("--seed", type=int, default=0, help="seed for faults, order and ids")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep files here (default: temp)"
    )
    parser.add_argument(
        "--token-limit", type=int, default=None, help="enqueued-token limit per batch"
    )
    args = parser.parse_args(argv)
    try:
        config = SimConfig(
            speed=args.speed,
            fault_rate=args.fault_rate,
            seed=args.seed,
            data_dir=args.data_dir,
            token_limit=args.token_limit,
        )
    except ValueError as exc:
        parser.error(str(exc))
    serve(args.host, args.port, config)
    return 0
