"""Toasts for notices: while it runs, the dashboard tells of each new notice once.

Every few refreshes the app reads the notices true now (`core.notices.detect`, read-only:
the dashboard never records anything, so each open dashboard tells its own user) and
shows a toast for each it has not seen, ringing the terminal bell once for the lot unless
`--no-bell` or the config file's `bell = false` says otherwise. What is already true when
the dashboard opens is not news: the first look only takes note of it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.notifications import SeverityLevel

from batchdash.core import config
from batchdash.core.db import DbLocation
from batchdash.core.notices import (
    ERROR,
    INFO,
    WARNING,
    Notice,
    NoticeRules,
    detect,
    rules_from_config,
)
from batchdash.tui.actions import ActingApp

#: Refreshes between two looks for notices (a look reads batches, queues and workers).
LOOK_EVERY_REFRESHES = 2
#: Batch endings this long before the dashboard opened are still read (as its baseline).
LOOKBACK_SECONDS = 60.0
#: Seconds a toast stays up: errors longer, so a glance away does not miss them.
TOAST_SECONDS = {ERROR: 20.0}
DEFAULT_TOAST_SECONDS = 8.0
_SEVERITY: dict[str, SeverityLevel] = {INFO: "information", WARNING: "warning", ERROR: "error"}


class NoticeMemory:
    """The notice ids this dashboard has seen; None before its first look."""

    def __init__(self) -> None:
        self.seen: set[str] | None = None

    def fresh(self, notices: list[Notice]) -> list[Notice]:
        """The notices never seen before (none on the first look: that is the baseline)."""
        ids = {n.id for n in notices}
        if self.seen is None:
            self.seen = ids
            return []
        new = [n for n in notices if n.id not in self.seen]
        self.seen |= ids
        return new


def bell_setting(no_bell: bool) -> bool:
    """Whether to ring: not with `--no-bell`, nor with `bell = false` in the config file."""
    return not no_bell and config.file_settings().bell is not False


class ToastingApp(ActingApp):
    """The acting dashboard plus toasts (and the bell) for new notices."""

    def __init__(self, where: DbLocation, *, bell: bool = True, **kwargs: Any) -> None:
        super().__init__(where, **kwargs)
        self.ring_bell = bell
        self.notice_rules: NoticeRules = rules_from_config()
        self.notices_seen = NoticeMemory()
        self.notices_since = 0.0
        self._looking = False

    def watch_notices(self) -> None:
        """Look for notices now (the baseline) and every few refreshes after."""
        # Batch endings from shortly before the dashboard opened on: older ones are no news.
        self.notices_since = self.clock() - LOOKBACK_SECONDS
        self.set_interval(self.refresh_every * LOOK_EVERY_REFRESHES, self._look_for_notices)
        self._look_for_notices()

    def _look_for_notices(self) -> None:
        if not self._looking:  # a slow store: skip a look rather than pile them up
            self._looking = True
            self.run_worker(self._toast_new(), group="notices", exit_on_error=False)

    async def _toast_new(self) -> None:
        read = partial(detect, now=self.clock(), rules=self.notice_rules, since=self.notices_since)
        try:
            found = [] if self.db is None else await self.db.read(read)
        except Exception:  # the refresh loop reports a failing store; try at the next look
            return
        finally:
            self._looking = False
        new = self.notices_seen.fresh(found)
        for notice in new:
            self.notify(
                notice.message,
                title=notice.title,
                severity=_SEVERITY.get(notice.severity, "warning"),
                timeout=TOAST_SECONDS.get(notice.severity, DEFAULT_TOAST_SECONDS),
                markup=False,  # names come from the store: never markup
            )
        if new and self.ring_bell:
            self.bell()
