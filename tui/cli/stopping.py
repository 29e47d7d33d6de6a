"""`workers stop`: this host's workers by signal, other hosts' through the database.

A worker with a live PID file in this host's state folder gets SIGTERM, as before. One
that runs elsewhere (another host, or no PID file here) cannot be signalled: it is asked
through its row (`request_stop`), its next heartbeat sees the request, and it drains as on
SIGTERM. Either way the command waits until the workers have stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from batchdash.core.actor import Actor, Origin
from batchdash.core.db.ports import Store
from batchdash.core.files import Identity, PidState, check_pid_file, process_identity
from batchdash.core.liveness import this_host
from batchdash.core.models import Worker, WorkerState
from batchdash.core.worker import pid_dir
from batchdash.tui.cli.common import EXIT_ERROR, EXIT_OK, CliError, db_location, run_async

#: Worker states of a process that is still running (or may be: stale).
_RUNNING = (WorkerState.IDLE, WorkerState.BUSY, WorkerState.DRAINING, WorkerState.STALE)


@dataclass(frozen=True, slots=True)
class _Local:
    """A worker of this host whose PID file names a running process."""

    pid: int
    identity: Identity


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _live_workers(folder: Path) -> dict[str, _Local]:
    """This host's workers whose PID file still names them, by worker id; stale PID files
    are removed.

    A pid alone is not enough: after a worker is killed its pid may belong to any other
    process by now, so each process's start time and command line must match the file.
    """
    found: dict[str, _Local] = {}
    for pid_file in sorted(folder.glob("*.pid")) if folder.exists() else []:
        check = check_pid_file(pid_file)
        worker = pid_file.stem
        if check is None:
            if pid_file.exists():  # else the worker just exited and removed it
                print(f"skipped unreadable pid file {pid_file}", file=sys.stderr)
        elif check.state is PidState.RUNNING:
            if check.identity is not None:  # always, when running
                found[worker] = _Local(check.pid, check.identity)
        elif check.state is PidState.UNKNOWN:
            print(
                f"not signalling pid {check.pid} of worker {worker}: without /proc "
                "it cannot be told apart from another process with that pid",
                file=sys.stderr,
            )
        else:
            pid_file.unlink(missing_ok=True)
            why = (
                "process gone"
                if check.state is PidState.GONE
                else f"pid {check.pid} reused by another process"
            )
            print(f"removed stale pid file for worker {worker} ({why})")
    return found


def _chosen(args: argparse.Namespace, workers: list[Worker]) -> list[Worker]:
    """The running workers the command line names (ids, `--host`, or `--all`)."""
    known = {w.id for w in workers}
    unknown = [worker_id for worker_id in args.worker_ids if worker_id not in known]
    if unknown:
        raise CliError(f"no worker {unknown[0]!r} on this database (see `batchdash workers list`)")
    return [
        w
        for w in workers
        if w.state in _RUNNING
        and (args.all or w.id in args.worker_ids or (args.host is not None and w.host == args.host))
    ]


def _signal(local: dict[str, _Local]) -> None:
    for entry in local.values():
        try:
            os.kill(entry.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue


def _ask_to_stop(args: argparse.Namespace, worker_ids: list[str]) -> list[str]:
    """Set the stop flag of these workers (with its `stop_requested` event naming who asked,
    for the audit trail); returns those asked. The only way to reach workers this host
    cannot signal."""

    async def ask(db: Store) -> list[str]:
        actor = Actor.current(Origin.CLI)
        return await db.write(lambda tx: tx.workers.request_stop(worker_ids, time.time(), actor))

    return run_async(ask, args) if worker_ids else []


def _not_stopped(args: argparse.Namespace, worker_ids: list[str]) -> list[str]:
    """Which of these workers have not reached a final state (stopped or dead) yet."""
    if not worker_ids:
        return []

    async def states(db: Store) -> list[Worker]:
        return await db.read(lambda tx: tx.workers.list_workers())

    final = (WorkerState.STOPPED, WorkerState.DEAD)
    return [w.id for w in run_async(states, args) if w.id in worker_ids and w.state not in final]


def cmd_workers_stop(args: argparse.Namespace) -> int:
    """Stop workers and wait until they have drained: with no selection, every worker of
    this host by SIGTERM; with ids, `--host` or `--all`, remote ones through the database."""
    local = _live_workers(pid_dir(db_location(args)))
    remote: list[str] = []
    if args.worker_ids or args.host is not None or args.all:

        async def listed(db: Store) -> list[Worker]:
            return await db.read(lambda tx: tx.workers.list_workers())

        chosen = _chosen(args, run_async(listed, args))
        here = this_host()
        local = {w.id: local[w.id] for w in chosen if w.id in local and w.host == here}
        remote = _ask_to_stop(args, [w.id for w in chosen if w.id not in local])
    if not local and not remote:
        print("no workers running")
        return EXIT_OK
    _ask_to_stop(args, list(local))  # signalled below: asked too, so the events say who
    _signal(local)

    def left() -> list[str]:
        mine = [wid for wid, e in local.items() if process_identity(e.pid) == e.identity]
        return mine + _not_stopped(args, remote)

    if not _wait_for(lambda: not left(), args.timeout):
        print(
            f"batchdash: error: still running after {args.timeout:g}s: {', '.join(left())}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(f"stopped {len(local) + len(remote)} workers")
    return EXIT_OK
