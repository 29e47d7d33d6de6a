"""A real headless Chromium driven over the DevTools protocol (CDP), for `batchdash serve`.

No playwright: Debian's chromium is started with `--remote-debugging-port=0`, and a small
CDP client on aiohttp's websocket (aiohttp comes with textual-serve) navigates, reads the
page and takes screenshots.

The served dashboard is drawn by xterm.js on a canvas, so the DOM holds no text. A script
run before the page's own catches the xterm `Terminal` object as the page stores it (the
first assignment of a `terminal` property whose value has a buffer), and `screen_text`
reads the rows from xterm's public buffer API: exactly the characters the browser shows.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

#: Debian's package (`apt-get install chromium`), as .ci/run installs it.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Runs before the page's scripts: keep each xterm Terminal the page creates.
_CATCH_TERMINAL = """
(() => {
  const found = (window.__xtermTerminals = []);
  Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    set(value) {
      Object.defineProperty(this, "terminal", {
        value, writable: true, configurable: true, enumerable: true,
      });
      if (value && value.buffer && typeof value.write === "function") found.push(value);
    },
  });
})();
"""

#: The rows on screen of the first terminal, or null before there is one.
_SCREEN_TEXT = """
(() => {
  const term = window.__xtermTerminals[0];
  if (!term) return null;
  const buffer = term.buffer.active;
  const rows = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
})()
"""


class Page:
    """One browser tab, spoken to over its CDP websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, size: tuple[int, int]) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.size = size

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events in between are skipped)."""
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        async for message in self._ws:
            reply = json.loads(message.data)
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
        raise RuntimeError(f"{method}: the browser closed the connection")

    async def open(self, url: str) -> None:
        """Load `url`, catching its xterm terminal (see the module's docstring)."""
        await self.call("Page.enable")
        # The page fits its terminal to the viewport: make it exactly `size`.
        width, height = self.size
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=_CATCH_TERMINAL)
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return reply["result"].get("value")

    async def screen_text(self) -> str:
        """What the page's terminal shows now, row by row ("" before it exists)."""
        return str(await self.evaluate(_SCREEN_TEXT) or "")

    async def wait_for_text(self, *needles: str, timeout: float = 60) -> str:
        """The terminal's text once it shows every one of `needles`."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen_text()
            if all(needle in text for needle in needles):
                return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"the page never showed {needles}; it shows:\n{text}")

    async def press(self, key: str) -> None:
        """Type one printable key into the terminal, as a person would."""
        await self.evaluate("window.__xtermTerminals[0].focus()")
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, text=key)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key)

    async def screenshot(self, path: Path) -> None:
        """Save a PNG of the tab."""
        reply = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(reply["data"]))


@asynccontextmanager
async def chromium(profile: Path, size: tuple[int, int] = (1400, 900)) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab; stopped on exit."""
    assert CHROMIUM is not None, "chromium is not installed"
    sockets = tempfile.mkdtemp(prefix="bd-chromium-")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root in CI
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its singleton socket folder goes to TMPDIR and outlives it: give it one we remove.
        # (Not the profile: a socket's path must stay under ~100 characters.)
        env={**os.environ, "TMPDIR": sockets},
    )
    try:
        port = await _devtools_port(profile / "DevToolsActivePort", proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = await reply.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws, size)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(sockets, ignore_errors=True)


async def _devtools_port(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """The DevTools port chromium writes into its profile once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (lines := path.read_text().splitlines()):
            return int(lines[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode} before listening")
        await asyncio.sleep(0.05)
    raise AssertionError(f"chromium did not listen within {timeout}s")
