"""`batchdash serve` over real HTTP: the token on a network bind (401 without it, a cookie
after `?token=` once, a bearer header), loopback by default, other sites refused, and the
token shown only in the one URL line."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import cli
from tests.integration.serving import serving

TOKEN = "t0k3n-for-the-test-5e1f"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "serve.db"
    cli("init", "--db", str(path))
    return str(path)


def test_a_network_address_without_a_token_is_refused(db: str) -> None:
    proc = cli("serve", "--host", "0.0.0.0", "--port", "0", "--db", db, check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "batchdash: error: --host 0.0.0.0 is reachable from other machines: give a token with "
        "--token or BATCHDASH_SERVE_TOKEN (or bind 127.0.0.1)\n"
    )


def test_a_taken_port_is_one_line(db: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("serve", "--port", str(port), "--db", db, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"batchdash: error: cannot listen on 127.0.0.1:{port}: ")
    assert proc.stderr.count("\n") == 1


def test_a_missing_database_is_refused_before_serving(tmp_path: Path) -> None:
    proc = cli("serve", "--port", "0", "--db", str(tmp_path / "nope.db"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"batchdash: error: no database at {tmp_path / 'nope.db'}")


async def test_on_a_network_address_every_request_needs_the_token(db: str) -> None:
    with serving("--host", "0.0.0.0", "--db", db, BATCHDASH_SERVE_TOKEN=TOKEN) as served:
        assert served.url.endswith(f"/?token={TOKEN}")
        assert "read-only" in served.line
        async with aiohttp.ClientSession() as http:
            for path in ("/", "/ws", "/static/js/textual.js", f"/?token=not-{TOKEN}"):
                async with http.get(served.base + path) as reply:
                    assert reply.status == 401, path
                    assert "needs its token" in await reply.text()
            # The token once in the URL: a cookie, and the same page without the token.
            async with http.get(
                f"{served.base}/?fontsize=14&token={TOKEN}", allow_redirects=False
            ) as reply:
                assert reply.status == 302
                assert reply.headers["Location"] == "/?fontsize=14"
                cookie = reply.cookies["batchdash_token"]
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
                assert TOKEN not in cookie.value
            session = {"Cookie": f"batchdash_token={cookie.value}"}
            async with http.get(served.base + "/", headers=session) as reply:
                assert reply.status == 200
                # The page connects back to the address the browser used.
                assert f"ws://127.0.0.1:{served.port}/ws" in await reply.text()
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(served.base + "/static/js/textual.js", headers=bearer) as reply:
                assert reply.status == 200
            # A page of another site cannot open the dashboard's websocket, token or not.
            evil = {**session, "Origin": "http://evil.example"}
            async with http.get(served.base + "/ws", headers=evil) as reply:
                assert reply.status == 403
    rest = served.proc.stdout.read() if served.proc.stdout else ""
    assert (served.line + rest).count(TOKEN) == 1  # only in the URL line


async def test_loopback_needs_no_token_but_answers_only_loopback_names(db: str) -> None:
    with serving("--db", db) as served:
        assert served.url == f"http://127.0.0.1:{served.port}/"
        async with aiohttp.ClientSession() as http:
            async with http.get(served.base + "/") as reply:
                assert reply.status == 200
            # A DNS name rebound to 127.0.0.1 by another site is not this server's name.
            rebound = {"Host": f"evil.example:{served.port}"}
            async with http.get(served.base + "/", headers=rebound) as reply:
                assert reply.status == 403
            cross = {"Origin": "http://evil.example"}
            async with http.get(served.base + "/ws", headers=cross) as reply:
                assert reply.status == 403
