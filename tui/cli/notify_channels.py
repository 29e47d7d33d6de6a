"""Where `batchdash poll` sends notices: a command (`--notify CMD`) or a webhook (`--webhook URL`).

A channel sends one notice's JSON and says whether it got through; retries, ordering and
the memory of what was sent live in `notify.py`. A channel's stored name is a hash of the
command or URL, and its label in messages shows a URL's scheme and host only: a webhook
URL often holds a token (in its path or query), which must land in no database or log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import shutil
from urllib.parse import urlsplit

import httpx

from batchdash.tui.cli.runner import CliError

#: Longest a `--notify` command may run for one notice before it is killed (and retried).
COMMAND_TIMEOUT = 60.0
#: Longest one webhook POST may take.
WEBHOOK_TIMEOUT = 10.0


class DeliveryError(Exception):
    """A send failed; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CommandChannel:
    """Runs a command (no shell: `sh -c '…'` if you want one) with the JSON on stdin."""

    def __init__(self, command: str) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise CliError(f"--notify {command!r}: {exc}") from exc
        if not self.argv:
            raise CliError("--notify needs a command")
        program = self.argv[0]
        found = shutil.which(program) if os.sep not in program else program
        if found is None or not os.access(found, os.X_OK):
            raise CliError(f"--notify: no executable {program!r} (not found or not executable)")
        self.name = f"command:{_digest(shlex.join(self.argv))}"
        self.label = f"command {program}"

    async def send(self, body: bytes, notice_id: str) -> None:
        """Run the command once; exit status 0 is delivered."""
        try:
            proc = await asyncio.create_subprocess_exec(*self.argv, stdin=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise DeliveryError(f"cannot run: {exc.strerror or exc}", retry=True) from exc
        try:
            # One line: `read` in a shell script and line-based tools see a whole notice.
            await asyncio.wait_for(proc.communicate(body + b"\n"), COMMAND_TIMEOUT)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise DeliveryError(f"still running after {COMMAND_TIMEOUT:.0f}s", retry=True) from exc
        if proc.returncode != 0:
            raise DeliveryError(f"exit status {proc.returncode}", retry=True)

    async def close(self) -> None:
        """Nothing to release."""


class WebhookChannel:
    """POSTs the JSON to a URL (http or https); any 2xx is delivered."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError("--webhook must be an http:// or https:// URL with a host")
        self.url = url
        self.name = f"webhook:{_digest(url)}"
        port = f":{parts.port}" if parts.port else ""
        self.label = f"webhook {parts.scheme}://{parts.hostname}{port}/…"
        self._client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)

    async def send(self, body: bytes, notice_id: str) -> None:
        """POST once; 5xx, 408, 429 and network errors may be retried, other codes not."""
        headers = {"content-type": "application/json", "idempotency-key": notice_id}
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except Exception as exc:
            # httpx may quote the URL in its message: never show it (it may hold a token).
            message = str(exc).replace(self.url, self.label) or type(exc).__name__
            raise DeliveryError(message, retry=isinstance(exc, httpx.HTTPError)) from exc
        code = response.status_code
        if not 200 <= code < 300:
            retry = code >= 500 or code in (408, 429)
            raise DeliveryError(f"HTTP {code}", retry=retry)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()


Channel = CommandChannel | WebhookChannel


def channels(commands: tuple[str, ...], webhooks: tuple[str, ...]) -> list[Channel]:
    """The channels the command line asks for (each checked now: a bad one is exit 2)."""
    found: list[Channel] = [CommandChannel(c) for c in commands]
    found += [WebhookChannel(u) for u in webhooks]
    return found
