"""Start `batchdash serve` as a real process on a free port and read the URL it prints."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.conftest import spawn

_URL = re.compile(r"at (https?://\S+)")
#: Behind a proxy (`--public-url`) the URL has no port: the line says where it listens.
_PORT = re.compile(r"listening on \S+:(\d+);|//[^/]+:(\d+)/")


@dataclass(frozen=True)
class Served:
    """A running `batchdash serve`: the URL line it printed, and its port."""

    proc: subprocess.Popen[str]
    line: str
    url: str
    port: int

    @property
    def base(self) -> str:
        """The server on loopback, whatever address it bound."""
        return f"http://127.0.0.1:{self.port}"


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            break
    raise AssertionError(f"serve printed no line within {timeout}s (exit {proc.poll()})")


@contextmanager
def serving(*args: str, timeout: float = 30, **env: str) -> Iterator[Served]:
    """`batchdash serve --port 0 ARGS` until the block ends (then SIGINT, as Ctrl+C)."""
    proc = spawn("serve", "--port", "0", *args, **env)
    try:
        line = _read_line(proc, timeout)
        found = _URL.search(line)
        assert found, f"no URL in {line!r}"
        url = found.group(1)
        at = _PORT.search(line)
        assert at, f"no port in {line!r}"
        port = int(at.group(1) or at.group(2))
        yield Served(proc, line, url, port)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
