"""Is a worker alive? Process checks and thresholds shared by workers, sync and snapshots.

Kept free of heavy imports: the `--once` path needs these without the worker machinery.
"""

from __future__ import annotations

import os
from pathlib import Path

#: A worker whose heartbeat is older than this many intervals is shown as stale.
STALE_AFTER_INTERVALS = 3.0


def this_host() -> str:
    """The host name workers record: BATCHDASH_HOST if set, else the machine's.

    The override names a host where the machine's own name says little (a container's
    random hostname); a worker only judges liveness by PID for workers of its own host
    name, so two machines must never share one.
    """
    return os.environ.get("BATCHDASH_HOST") or os.uname().nodename


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name.
    return stat.rpartition(")")[2].split()[0] != "Z"
