"""A tiny reverse proxy for the tests, as nginx's `proxy_pass` does it: the Host header
becomes the upstream's, an optional path prefix is stripped, X-Forwarded-* are added, and
HTTP and websockets are relayed (a refused websocket handshake keeps its status)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

#: Headers of one hop only (and the ones the proxy's own client sets again).
_HOP = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",  # the client below decompresses
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)


def _end_to_end(headers: CIMultiDict[str] | object) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP)  # type: ignore[attr-defined]


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)


@asynccontextmanager
async def reverse_proxy(upstream: str, *, prefix: str = "") -> AsyncIterator[str]:
    """Proxy `http://127.0.0.1:PORT{prefix}/…` to `upstream/…` until the block ends; yields
    the proxy's own base URL (with the prefix)."""
    client = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def forward(request: web.Request) -> web.StreamResponse:
        if not request.path.startswith(prefix + "/"):
            return web.Response(status=404, text="not proxied\n")
        url = upstream + request.raw_path.removeprefix(prefix)
        headers = _end_to_end(request.headers)
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = "https"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await _websocket(request, url, headers)
        async with client.request(
            request.method, url, headers=headers, data=await request.read(), allow_redirects=False
        ) as reply:
            body = await reply.read()
            return web.Response(status=reply.status, body=body, headers=_end_to_end(reply.headers))

    async def _websocket(
        request: web.Request, url: str, headers: CIMultiDict[str]
    ) -> web.StreamResponse:
        try:
            up = await client.ws_connect(url, headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return web.Response(status=refused.status, text=f"{refused.message}\n")
        down = web.WebSocketResponse()
        await down.prepare(request)
        pumps = [asyncio.create_task(_pump(up, down)), asyncio.create_task(_pump(down, up))]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await up.close()
        await down.close()
        return down

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        await runner.cleanup()
        await client.close()
