"""Files batchdash writes (the database, exports, and worker PID files and logs in the
database's state folder): private (0600) creation and worker PID files.

A PID file records the worker's pid together with the process's identity (its start time
in clock ticks since boot and its command line, both from /proc), so `workers stop` can
tell a live worker from an unrelated process that got the pid after the worker died.
PID files written before this (one line with the pid) are still understood: their
modification time stands in for the recorded start time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

#: Owner read/write only, like the database: logs, PID files and exports may hold results.
PRIVATE_MODE = 0o600


def open_private(path: Path) -> int:
    """Create (or truncate) `path` readable by its owner only; returns the descriptor.

    An existing file is removed first: `os.open` keeps the mode of a file it reuses.
    """
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)


def open_private_append(path: Path) -> int:
    """Open `path` for appending, creating it owner-only if it does not exist."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_MODE)


@dataclass(frozen=True, slots=True)
class Identity:
    """What tells one process apart from a later one with the same pid."""

    start_ticks: int
    cmdline: tuple[str, ...]


def process_identity(pid: int) -> Identity | None:
    """The identity of a running process, or None if it is gone (or /proc is unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Fields after the parenthesised command name start at field 3 (state); the start
    # time is field 22.
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    cmdline = tuple(os.fsdecode(part) for part in raw.split(b"\0")[:-1])
    return Identity(int(fields[19]), cmdline)


def proc_available() -> bool:
    """Whether this system exposes processes in /proc (Linux); identities need it."""
    return Path("/proc/self/stat").exists()


def write_pid_file(path: Path) -> None:
    """Record this process (pid, start time, command line) in `path`, owner-only, atomically."""
    pid = os.getpid()
    me = process_identity(pid)
    record: dict[str, object] = {"pid": pid}
    if me is not None:
        record |= {"start_ticks": me.start_ticks, "cmdline": list(me.cmdline)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # not *.pid: readers never see half a file
    with os.fdopen(open_private(tmp), "w") as out:
        out.write(json.dumps(record) + "\n")
    tmp.replace(path)


class PidState(StrEnum):
    """What a PID file points at."""

    RUNNING = "running"  # still the worker that wrote the file
    GONE = "gone"  # no such process
    REUSED = "reused"  # another process has the pid now
    UNKNOWN = "unknown"  # no /proc on this system: cannot tell


@dataclass(frozen=True, slots=True)
class PidCheck:
    """The verdict on one PID file."""

    pid: int
    state: PidState
    #: The process's identity now (None unless RUNNING), to tell when it has exited.
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class PidRecord:
    """A PID file's content: the pid, and the identity if the writer recorded one."""

    pid: int
    identity: Identity | None


def read_pid_file(path: Path) -> PidRecord | None:
    """Parse a PID file (JSON, or the plain pid of older versions); None if unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text.isdigit():
        return PidRecord(int(text), None)
    try:
        record = json.loads(text)
        pid = record["pid"]
        identity = None
        if "start_ticks" in record:
            identity = Identity(int(record["start_ticks"]), tuple(map(str, record["cmdline"])))
    except (ValueError, TypeError, KeyError):
        return None
    return PidRecord(pid, identity) if isinstance(pid, int) else None


def check_pid_file(path: Path) -> PidCheck | None:
    """Is the process named by this PID file still the worker that wrote it? None: unreadable."""
    record = read_pid_file(path)
    if record is None:
        return None
    if not proc_available():
        return PidCheck(record.pid, PidState.UNKNOWN)
    now = process_identity(record.pid)
    if now is None:
        return PidCheck(record.pid, PidState.GONE)
    same = now == record.identity if record.identity else _legacy_matches(path, now)
    if not same:
        return PidCheck(record.pid, PidState.REUSED)
    return PidCheck(record.pid, PidState.RUNNING, now)


def _legacy_matches(path: Path, now: Identity) -> bool:
    """An old plain PID file: the process must predate the file and look like a worker."""
    try:
        written = path.stat().st_mtime
    except OSError:
        return False
    started = _boot_time() + now.start_ticks / os.sysconf("SC_CLK_TCK")
    looks_like_worker = "worker" in now.cmdline and any(
        "tui.cli" in word or "batchdash" in word for word in now.cmdline[:3]
    )
    return started <= written + 1.0 and looks_like_worker


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0
