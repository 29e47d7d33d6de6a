"""`batchdash serve --public-url` behind a real (tiny) reverse proxy that rewrites Host, as
nginx or caddy in front of https://dash.example.com would: the page and its websocket go
through the proxy, the public origin is accepted, another origin is not, and the token is
still required."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import cli
from tests.integration.reverse_proxy import reverse_proxy
from tests.integration.serving import serving

TOKEN = "t0k3n-behind-the-proxy-7c2a"
PUBLIC = "https://dash.example.com"
#: What a browser on the public URL sends to the proxy.
BROWSER = {"Host": "dash.example.com"}


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "proxied.db"
    cli("init", "--db", str(path))
    return str(path)


async def _session_cookie(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Open the `?token=` URL once through the proxy; the cookie it sets, as a header."""
    async with http.get(url, headers=BROWSER, allow_redirects=False) as reply:
        assert reply.status == 302
        location = reply.headers["Location"]
        cookie = reply.cookies["batchdash_token"].value
    return {**BROWSER, "Cookie": f"batchdash_token={cookie}", "X-Location": location}


async def _first_screen_bytes(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> bytes:
    """Ping through the relay, then wait for the dashboard's first output."""
    await ws.send_json(["ping", "through-the-proxy"])
    deadline = time.monotonic() + timeout
    pong, screen = False, b""
    while not (pong and screen) and time.monotonic() < deadline:
        message = await ws.receive(timeout=deadline - time.monotonic())
        if message.type == aiohttp.WSMsgType.TEXT and "through-the-proxy" in message.data:
            pong = True
        elif message.type == aiohttp.WSMsgType.BINARY:
            screen += message.data
    assert pong, "no pong through the proxy"
    return screen


async def test_behind_a_proxy_the_page_and_websocket_use_the_public_url(db: str) -> None:
    env = {"BATCHDASH_SERVE_TOKEN": TOKEN, "BATCHDASH_SERVE_PUBLIC_URL": PUBLIC}
    with serving("--host", "0.0.0.0", "--db", db, **env) as served:
        assert served.line.startswith(f"serving the dashboard (read-only) at {PUBLIC}/?token=")
        async with reverse_proxy(served.base) as proxy, aiohttp.ClientSession() as http:
            # The token is still required, through the proxy too.
            async with http.get(proxy + "/", headers=BROWSER) as reply:
                assert reply.status == 401
            session = await _session_cookie(http, f"{proxy}/?token={TOKEN}")
            assert session.pop("X-Location") == "/"
            async with http.get(proxy + "/", headers=session) as reply:
                assert reply.status == 200
                page = await reply.text()
            # The page connects to the public URL, not the Host the proxy sent.
            assert 'data-session-websocket-url="wss://dash.example.com/ws"' in page
            assert f"{PUBLIC}/static/js/textual.js" in page
            async with http.get(proxy + "/static/js/textual.js", headers=session) as reply:
                assert reply.status == 200
            # The browser's websocket, from the public origin, reaches the dashboard.
            ours = {**session, "Origin": PUBLIC}
            async with http.ws_connect(proxy + "/ws?width=80&height=24", headers=ours) as ws:
                assert await _first_screen_bytes(ws, timeout=30)
            # A page of another site cannot open it, through the proxy or not.
            evil = {**session, "Origin": "https://evil.example"}
            for url in (proxy + "/ws", served.base + "/ws"):
                async with http.get(url, headers=evil) as reply:
                    assert reply.status == 403, url


async def test_a_proxy_that_strips_a_path_prefix(db: str) -> None:
    public = "https://example.com/dash/"
    with serving("--public-url", public, "--db", db, BATCHDASH_SERVE_TOKEN=TOKEN) as served:
        assert f"at https://example.com/dash/?token={TOKEN} " in served.line
        proxied = reverse_proxy(served.base, prefix="/dash")
        async with proxied as proxy, aiohttp.ClientSession() as http:
            session = await _session_cookie(http, f"{proxy}/?fontsize=14&token={TOKEN}")
            assert session.pop("X-Location") == "/dash/?fontsize=14"
            async with http.get(proxy + "/", headers=session) as reply:
                page = await reply.text()
            assert 'data-session-websocket-url="wss://example.com/dash/ws"' in page
            origin = {**session, "Origin": "https://example.com"}
            async with http.ws_connect(proxy + "/ws", headers=origin) as ws:
                await ws.send_json(["ping", "prefixed"])
                assert (await ws.receive_json(timeout=30)) == ["pong", "prefixed"]


def test_a_public_url_needs_a_token_even_on_loopback(db: str) -> None:
    proc = cli("serve", "--port", "0", "--public-url", PUBLIC, "--db", db, check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"batchdash: error: --public-url {PUBLIC} is reachable from other machines: give a "
        "token with --token or BATCHDASH_SERVE_TOKEN\n"
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("dash.example.com", "must be an http:// or https:// URL with a host name"),
        ("ftp://dash.example.com", "must be an http:// or https:// URL with a host name"),
        ("https://", "must be an http:// or https:// URL with a host name"),
        ("https://dash.example.com:http", "not a URL"),
        ("https://user:pw@dash.example.com", "must not hold a user name or password"),
        ("https://dash.example.com/?a=1", "must have no query or fragment"),
    ],
)
def test_a_bad_public_url_is_one_line_naming_the_option(db: str, url: str, why: str) -> None:
    proc = cli("serve", "--port", "0", "--db", db, check=False, BATCHDASH_SERVE_PUBLIC_URL=url)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        f"batchdash: error: argument --public-url (or $BATCHDASH_SERVE_PUBLIC_URL): {why}"
    )
    assert proc.stderr.count("\n") == 1
    assert "pw@" not in proc.stderr
