"""`batchdash poll --notify CMD` and `--webhook URL`: each notice delivered once, across
restarts of the poller, with retries against a failing receiver.

Real `batchdash poll` processes, real batches on the simulator over HTTP, a real command
(a Python script appending its stdin to a file) and a real HTTP receiver on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from batchdash.core.providers import openai_batch
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, open_db_async
from tests.integration.test_batches import write_requests

#: Appends the notice read on stdin (one line of JSON) to the file named by argv[1].
RECORDER = "import sys\nwith open(sys.argv[1], 'a') as f: f.write(sys.stdin.read())\n"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        yield server


def _env(sim: SimServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}


async def _submit(db: str, tmp_path: Path, name: str) -> int:
    path = write_requests(tmp_path / f"{name}.jsonl", [f"{name}-1", f"{name}-2"])
    async with await open_db_async(db) as store:
        (batch_id,) = await openai_batch.submit_file(store, path, queue=name)
    return batch_id


def _poll(sim: SimServer, db: str, *channel: str) -> subprocess.CompletedProcess[str]:
    """One `poll --until-done` run (it drains its notices before it exits)."""
    return cli("poll", "--until-done", "--interval", "0.05", "--db", db, *channel, **_env(sim))


def _ids(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [json.loads(line)["id"] for line in log.read_text().splitlines()]


async def test_notify_runs_the_command_once_per_notice_across_restarts(
    sim: SimServer, tmp_path: Path, any_db: str
) -> None:
    cli("init", "--db", any_db)
    log = tmp_path / "notices.jsonl"
    recorder = tmp_path / "record.py"
    recorder.write_text(RECORDER)
    command = f"{sys.executable} {recorder} {log}"
    first = await _submit(any_db, tmp_path, "first")
    out = _poll(sim, any_db, "--notify", command).stdout
    assert "new channel, starting from now" in out
    assert _ids(log) == [f"batch:{first}:succeeded"]
    notice = json.loads(log.read_text().splitlines()[0])
    assert notice["kind"] == "batch_ended"
    assert notice["batch"]["completed"] == 2
    assert notice["batch"]["queue"] == "first"

    # A restart delivers the new ending and never the old one again.
    second = await _submit(any_db, tmp_path, "second")
    out = _poll(sim, any_db, "--notify", command).stdout
    assert "new channel" not in out
    assert _ids(log) == [f"batch:{first}:succeeded", f"batch:{second}:succeeded"]

    # Another command is a new channel: it starts from now, replaying nothing.
    other = tmp_path / "other.jsonl"
    out = _poll(sim, any_db, "--notify", f"{sys.executable} {recorder} {other}").stdout
    assert "new channel, starting from now" in out
    assert _ids(other) == []


class _Receiver(BaseHTTPRequestHandler):
    """Answers each POST with the next code of `plan` (204 once it is used up); records
    every body."""

    bodies: list[dict[str, Any]]
    plan: list[int]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.bodies.append(body)
        self.send_response(self.plan.pop(0) if self.plan else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@dataclass
class Receiver:
    """A webhook receiver on loopback: its URL (with a token), what it got, what it answers."""

    url: str
    bodies: list[dict[str, Any]]
    plan: list[int]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver("", [], [])
    handler = type("Handler", (_Receiver,), {"bodies": got.bodies, "plan": got.plan})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/SECRET-TOKEN-123"
    yield got
    server.shutdown()
    server.server_close()


async def test_webhook_retries_failures_then_delivers_once(
    sim: SimServer, tmp_path: Path, db_path: Path, receiver: Receiver
) -> None:
    url, bodies = receiver.url, receiver.bodies
    receiver.plan[:] = [500, 500]
    db = str(db_path)
    cli("init", "--db", db)
    batch_id = await _submit(db, tmp_path, "hooked")
    done = _poll(sim, db, "--webhook", url)
    assert [b["id"] for b in bodies] == [f"batch:{batch_id}:succeeded"] * 3  # 500, 500, 204
    assert "HTTP 500 (try 1/5)" in done.stderr
    assert f"sent batch:{batch_id}:succeeded" in done.stdout
    assert "SECRET-TOKEN" not in done.stdout + done.stderr  # the URL's token is never shown
    assert "/…" in done.stdout

    # A restart sends only what is new (the URL from the environment, out of sight of `ps`).
    second = await _submit(db, tmp_path, "later")
    cli(
        "poll", "--until-done", "--interval", "0.05", "--db", db, **_env(sim), BATCHDASH_WEBHOOK=url
    )
    assert [b["id"] for b in bodies[3:]] == [f"batch:{second}:succeeded"]


async def test_a_refused_notice_is_not_recorded_and_goes_out_at_the_next_start(
    sim: SimServer, tmp_path: Path, db_path: Path, receiver: Receiver
) -> None:
    url, bodies = receiver.url, receiver.bodies
    receiver.plan[:] = [400]  # refused: not worth retrying now
    db = str(db_path)
    cli("init", "--db", db)
    batch_id = await _submit(db, tmp_path, "refused")
    done = _poll(sim, db, "--webhook", url)
    assert "HTTP 400 (giving up until the next start)" in done.stderr
    assert len(bodies) == 1
    _poll(sim, db, "--webhook", url)
    _poll(sim, db, "--webhook", url)
    assert [b["id"] for b in bodies] == [f"batch:{batch_id}:succeeded"] * 2


def test_bad_channels_are_one_line_errors(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    for option, value, message in (
        ("--notify", "no-such-program-xyz", "no executable 'no-such-program-xyz'"),
        ("--notify", "'unclosed", "--notify"),
        ("--webhook", "ftp://example.com/x", "--webhook must be an http:// or https:// URL"),
    ):
        done = cli("poll", "--until-done", "--db", str(db_path), option, value, check=False)
        assert done.returncode == 2
        assert done.stderr.startswith("batchdash: error: ")
        assert message in done.stderr
        assert len(done.stderr.splitlines()) == 1
