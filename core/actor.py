"""Who took an action, and from where: the audit trail of the events a person causes.

Every retry, cancel, resume, pause or stop taken from the terminal dashboard (`tui`), the
dashboard served to a browser (`web`) or the command line (`cli`) passes an `Actor`; the
repositories write `by <user> via <origin>` into the detail of each event the action
writes, so `batchdash export --events` reads as an audit log. The detail column already
exists on both back ends, so no schema change is needed. Changes the system makes on its
own (a worker rescuing an expired lease) have no actor.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import StrEnum

#: Set to `web` in the environment of a dashboard that `batchdash serve` starts.
ORIGIN_ENV = "BATCHDASH_ORIGIN"

#: The detail of a `cancel_requested` event: the running job's worker stops it.
ASKED_TO_STOP = "worker aborts at its next heartbeat"


class Origin(StrEnum):
    """Where an action was taken."""

    TUI = "tui"
    WEB = "web"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Actor:
    """A person's action: the OS user and where they acted from.

    In a served dashboard the user is the OS user running `batchdash serve` (the browser's
    person is unknown to it) and the origin says `web`.
    """

    origin: Origin
    user: str

    @classmethod
    def current(cls, origin: Origin) -> Actor:
        """The OS user of this process acting from `origin`."""
        return cls(origin, os_user())

    def __str__(self) -> str:
        return f"by {self.user} via {self.origin}"


def os_user() -> str:
    """The login name of this process, or its uid where no name is known (a bare container)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and none of LOGNAME/USER/… set
        return f"uid {os.getuid()}"


def by_user(actor: Actor | None) -> str:
    """The detail of a user's cancel or retry: who, or just `by user` when not told."""
    return str(actor) if actor else "by user"


def event_detail(actor: Actor | None, detail: str | None = None) -> str | None:
    """An event's detail with who acted appended (`detail; by alice via cli`)."""
    if actor is None:
        return detail
    return f"{detail}; {actor}" if detail else str(actor)
