"""`batchdash serve`: the dashboard in a browser, through textual-serve, behind a token.

textual-serve (aiohttp) starts one dashboard process per browser tab and relays its
terminal over a websocket to xterm.js in the page. This module adds what a dashboard
reachable over a network needs on top of it:

- a token: with one, every request must carry it (`?token=` once, which sets a cookie and
  redirects to the same page without it, or `Authorization: Bearer …`), else 401;
- a guard against other web sites: a websocket opened from a page of another origin is
  refused (a page on the internet could otherwise drive a dashboard on localhost), and
  without a token only loopback host names are answered (DNS rebinding);
- the page's URLs built from the request's own host, so a browser on another machine
  connects back to the address it used; behind a reverse proxy (which rewrites Host) from
  the public URL given instead (`--public-url`), whose origin the websocket guard accepts;
- no access log: a request line may hold the token.

The database reaches each dashboard process through the environment, never its argv.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

#: The token's environment variable, the alternative to `--token`.
TOKEN_ENV = "BATCHDASH_SERVE_TOKEN"
#: The cookie a browser keeps after opening the `?token=` URL once.
COOKIE = "batchdash_token"
#: Host names a loopback-only server answers to (a rebound DNS name is refused).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server to this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


#: The port a browser leaves out of an Origin header for each scheme.
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PublicUrl:
    """Where browsers reach the server through a reverse proxy: `https://dash.example.com`
    or, when the proxy forwards a path prefix stripped, `https://example.com/dash`."""

    #: Scheme, host, port and path prefix, without a trailing slash.
    base: str
    #: What a browser sends as Origin from a page under `base` (no default port).
    origin: str
    hostname: str
    #: The path prefix the proxy strips ("" or "/dash").
    prefix: str


def parse_public_url(text: str) -> PublicUrl:
    """`text` as a PublicUrl; ValueError saying what is wrong with it."""
    try:
        parts = urlsplit(text.strip())
        secret = parts.username is not None
        port = None if secret else parts.port
    except ValueError:  # an unbalanced IPv6 bracket, a port that is not a number
        raise ValueError(f"not a URL: {text!r}") from None
    if secret:  # said without the URL, which holds a password
        raise ValueError("must not hold a user name or password (the token is the login)")
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host name, got {text!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must have no query or fragment, got {text!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    origin = f"{parts.scheme}://{host}"
    prefix = parts.path.rstrip("/")
    return PublicUrl(f"{origin}{prefix}", origin, parts.hostname, prefix)


def _cookie_value(token: str) -> str:
    """What the cookie holds: a digest of the token, so the browser never stores the token."""
    return hmac.new(token.encode(), b"batchdash serve session", hashlib.sha256).hexdigest()


def token_guard(token: str, prefix: str = "") -> Any:
    """Middleware: 401 unless the request carries the token (query, cookie or header).

    `prefix` is the path a reverse proxy strips, put back in the redirect's Location."""
    session = _cookie_value(token)

    def given(request: web.Request) -> bool:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(bearer.encode(), token.encode()) or hmac.compare_digest(
            cookie.encode(), session.encode()
        )

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        query = request.query.get("token")
        if query is not None and hmac.compare_digest(query.encode(), token.encode()):
            # Trade the token in the URL for a cookie, and drop it from the address bar.
            rest = request.rel_url.with_query(
                {k: v for k, v in request.query.items() if k != "token"}
            )
            response = web.HTTPFound(f"{prefix}{rest}")
            response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")
            raise response
        if not given(request):
            raise web.HTTPUnauthorized(
                text="401: this batchdash serve needs its token: open the URL it printed "
                "(…/?token=…) or send Authorization: Bearer <token>\n"
            )
        return await handler(request)

    return guard


def same_origin_guard(*, loopback_only: bool, public: PublicUrl | None = None) -> Any:
    """Middleware: refuse websockets opened by another site's page, and (without a token)
    any host name but a loopback one.

    A page comes from this server's own host or, through a proxy, from the public origin."""

    def ours(origin: str, request: web.Request) -> bool:
        if public is not None and origin.lower() == public.origin.lower():
            return True
        return urlsplit(origin).netloc == request.host

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin and not ours(origin, request):
            raise web.HTTPForbidden(text=f"403: websocket from another origin ({origin})\n")
        if loopback_only and (urlsplit(f"//{request.host}").hostname or "") not in LOOPBACK_NAMES:
            raise web.HTTPForbidden(text="403: this batchdash serve answers on localhost only\n")
        return await handler(request)

    return guard


class DashboardServer(Server):
    """textual-serve's server with the guards above, started on an already chosen port."""

    def __init__(
        self,
        command: str,
        host: str,
        port: int,
        token: str | None,
        public: PublicUrl | None = None,
    ) -> None:
        super().__init__(
            command,
            host=host,
            port=port,
            title="batchdash",
            public_url=public.base if public else None,
        )
        self.token = token
        self.public = public

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        public = self.public
        app.middlewares.append(same_origin_guard(loopback_only=self.token is None, public=public))
        if self.token is not None:
            app.middlewares.append(token_guard(self.token, public.prefix if public else ""))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Print nothing: `serve` prints the one URL line itself once it listens."""

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, its static and websocket URLs on the public URL if given (a proxy's
        Host is not the browser's), else on the host the browser used."""
        base = self.public.base if self.public else f"{request.scheme}://{request.host}"
        scheme, rest = base.split(":", 1)
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{'wss' if scheme == 'https' else 'ws'}:{rest}/ws",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }

    async def run(self, on_listening: Callable[[int], None]) -> None:
        """Listen, call `on_listening(port)`, serve until SIGINT/SIGTERM, then clean up."""
        runner = web.AppRunner(await self._make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            on_listening(_bound_port(runner))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (`--port 0` picks a free one)."""
    address = runner.addresses[0]
    return int(address[1])
