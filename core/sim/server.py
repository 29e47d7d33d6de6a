"""OpenAI-compatible HTTP simulator: the Starlette app, a threaded server for tests, and a CLI.

Point the real SDK at it with `OpenAI(base_url=server.base_url, api_key="sim")`. Endpoints:
`/v1/files` (upload, list, retrieve, content, delete), `/v1/batches` (create, retrieve,
cancel, list), `/v1/chat/completions`, `/v1/embeddings`, `/v1/completions`, `/v1/models`
and `/health` (core/sim/routes.py); Anthropic's `/v1/messages` and `/v1/messages/batches`
(core/sim/anthropic_routes.py). State lives in `SimStore` (core/sim/store.py); auth,
faults and error bodies in core/sim/middleware.py; the behaviour switches are listed in
core/sim/quirks.py and core/sim/README.md.

Random faults (`SimConfig.fault_rate`) are injected *before* any handler runs, which is what
guarantees a fault never leaves a side effect behind. The one deliberate exception is the
`ambiguous_create` quirk, which creates the batch and then answers 500.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from batchdash.core.sim.anthropic_batches import AnthropicStore
from batchdash.core.sim.anthropic_routes import AnthropicApi
from batchdash.core.sim.config import SimConfig
from batchdash.core.sim.middleware import (
    AuthMiddleware,
    FaultMiddleware,
    RequestIdMiddleware,
    exception_handlers,
)
from batchdash.core.sim.routes import SimApi
from batchdash.core.sim.store import SimStore

__all__ = ["SimConfig", "SimServer", "create_app", "main", "serve"]


def create_app(config: SimConfig) -> Starlette:
    """The simulator's ASGI app; its store is reachable as `app.state.store`."""
    store = SimStore(config)
    openai_api = SimApi(store, config)
    anthropic_api = AnthropicApi(AnthropicStore(store), openai_api.lose_response)
    app = Starlette(
        routes=openai_api.routes() + anthropic_api.routes(),
        # Like OpenAI, a bad key is refused before anything else can happen.
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AuthMiddleware, config=config),
            Middleware(FaultMiddleware, config=config),
        ],
        exception_handlers=exception_handlers(config),
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
        description="OpenAI/Anthropic Batch API simulator. Prints its URL, then serves.",
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
