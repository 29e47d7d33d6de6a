"""Delivering notices from `batchdash poll --notify CMD --webhook URL`, once each per channel.

After each poll cycle `Notifier.check` reads the notices true now (`core.notices.detect`)
and queues, per channel, those the channel has not sent. Each channel has its own
background task that sends them in order, retrying with backoff (bounded: `TRIES`), so a
slow or failing receiver never holds up polling nor the other channels. A notice is
recorded as sent (`Tx.notices`) only after the channel accepted it: delivery is
at-least-once (a crash between the two resends it) and the JSON carries the id to dedupe by.

A channel's first run takes what is already true as seen (`start_channel`): it starts
from now instead of replaying the store's whole history. One that gave up on a notice
tries it again on the next start of `poll`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from functools import partial

from batchdash.core.db.ports import Store, Tx
from batchdash.core.notices import Notice, NoticeRules, detect
from batchdash.tui.cli.notify_channels import Channel, DeliveryError
from batchdash.tui.fmt import one_line

#: Tries per notice and channel before giving up until the next start.
TRIES = 5
#: Seconds before the first retry; each further one waits twice as long (0.5, 1, 2, 4).
FIRST_BACKOFF = 0.5
#: Seconds a read of batch endings overlaps the one before.
RECHECK_MARGIN = 300.0
#: On exit, how long queued notices may still take to go out before they are left for
#: the next start.
DRAIN_SECONDS = 10.0


@dataclass
class _Lane:
    """One channel's queue of notices, its sender task, and what it holds or gave up."""

    channel: Channel
    queue: asyncio.Queue[Notice] = field(default_factory=asyncio.Queue)
    held: set[str] = field(default_factory=set)
    given_up: set[str] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class Notifier:
    """Sends new notices to each channel once; see the module docstring."""

    def __init__(self, db: Store, channels: list[Channel], rules: NoticeRules) -> None:
        self.db = db
        self.rules = rules
        self.lanes = [_Lane(c) for c in channels]
        #: Batch endings are read from here on: first the whole look-back, then since the
        #: last read (less a margin for writers whose clocks differ).
        self.since: float | None = None

    async def start(self) -> None:
        """Start each channel (a new one takes what is true now as seen), then its sender."""
        now = time.time()
        baseline = [n.id for n in await self._detect(now)]
        for lane in self.lanes:
            start = partial(_start_channel, channel=lane.channel.name, baseline=baseline, now=now)
            if await self.db.write(start):
                _say(f"{lane.channel.label}: new channel, starting from now")
            lane.task = asyncio.create_task(self._send_loop(lane))

    async def check(self) -> None:
        """Queue each channel's new notices (one read for all channels, never a send)."""
        now = time.time()
        try:
            notices = await self._detect(now, self.since)
        except Exception as exc:  # the next cycle tries again; polling goes on
            _say(f"notify: reading notices failed: {one_line(str(exc), 200)}", err=True)
            return
        self.since = now - RECHECK_MARGIN
        ids = [n.id for n in notices]
        for lane in self.lanes:
            unsent = set(await self.db.read(partial(_unsent, channel=lane.channel.name, ids=ids)))
            for notice in notices:
                if notice.id in unsent and notice.id not in lane.held | lane.given_up:
                    lane.held.add(notice.id)
                    lane.queue.put_nowait(notice)

    async def close(self, drain: float = DRAIN_SECONDS) -> None:
        """Give queued notices up to `drain` seconds to go out, then stop every sender."""
        waits = [asyncio.create_task(lane.queue.join()) for lane in self.lanes]
        if waits:
            await asyncio.wait(waits, timeout=drain)
        for lane in self.lanes:
            if lane.task is not None:
                lane.task.cancel()
                await asyncio.gather(lane.task, return_exceptions=True)
            await lane.channel.close()
            if lane.held:
                _say(f"{lane.channel.label}: {len(lane.held)} notice(s) left for the next start")
        for wait in waits:
            wait.cancel()

    async def _detect(self, now: float, since: float | None = None) -> list[Notice]:
        return await self.db.read(lambda tx: detect(tx, now, self.rules, since))

    async def _send_loop(self, lane: _Lane) -> None:
        while True:
            notice = await lane.queue.get()
            try:
                if await self._send(lane.channel, notice):
                    await self._mark_sent(lane.channel, notice)
                else:
                    lane.given_up.add(notice.id)
            finally:
                lane.held.discard(notice.id)
                lane.queue.task_done()

    async def _mark_sent(self, channel: Channel, notice: Notice) -> None:
        name = channel.name
        try:
            await self.db.write(lambda tx: tx.notices.mark_sent(name, [notice.id], time.time()))
        except Exception as exc:  # sent but not recorded: it goes out again (at-least-once)
            _say(f"{channel.label}: sent {notice.id} but could not record it: {exc}", err=True)
            return
        _say(f"{channel.label}: sent {notice.id}")

    async def _send(self, channel: Channel, notice: Notice) -> bool:
        """Send with retries; True once the channel accepted it."""
        body = json.dumps(notice.to_json(self.db.location.display)).encode()
        for attempt in range(1, TRIES + 1):
            try:
                await channel.send(body, notice.id)
                return True
            except DeliveryError as exc:
                last = attempt == TRIES or not exc.retry
                what = "giving up until the next start" if last else f"try {attempt}/{TRIES}"
                _say(f"{channel.label}: {notice.id}: {exc} ({what})", err=True)
                if last:
                    return False
                await asyncio.sleep(FIRST_BACKOFF * 2 ** (attempt - 1))
            except Exception as exc:  # unforeseen: say so, and keep this channel's sender alive
                # Its type only: the message might quote a webhook URL's token.
                _say(f"{channel.label}: {notice.id}: {type(exc).__name__}", err=True)
                return False
        return False


def _start_channel(tx: Tx, channel: str, baseline: list[str], now: float) -> bool:
    return tx.notices.start_channel(channel, baseline, now)


def _unsent(tx: Tx, channel: str, ids: list[str]) -> list[str]:
    return tx.notices.unsent(channel, ids)


def _say(text: str, *, err: bool = False) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr if err else sys.stdout, flush=True)
