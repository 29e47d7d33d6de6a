"""Worker commands: `worker` (run one in the foreground) and `workers start|stop|list`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from batchdash.core.config import MissingKeyError, openai_settings
from batchdash.core.db.ports import Store
from batchdash.core.files import open_private_append, read_pid_file
from batchdash.core.handlers import SimSettings
from batchdash.core.liveness import this_host
from batchdash.core.models import Worker
from batchdash.core.qa import parse_judges
from batchdash.core.queue import RetryPolicy
from batchdash.core.worker import WorkerOptions, check_workers, new_worker_id, pid_dir, run_worker
from batchdash.tui.argtypes import (
    FRACTION,
    NON_EMPTY,
    NON_NEGATIVE_FLOAT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    Checked,
    at_least,
)
from batchdash.tui.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    F,
    Group,
    db_location,
    db_option,
    example,
    invoke,
    run_async,
)
from batchdash.tui.cli.stopping import cmd_workers_stop
from batchdash.tui.cli.views import worker_json, write_json
from batchdash.tui.fmt import age, table

#: Shortest heartbeat or idle poll: below this an idle worker spins the CPU.
MIN_INTERVAL = 0.01
#: Seconds `workers start` waits for each worker to register.
START_TIMEOUT = 15.0
#: What a detached worker prints on its original stdout before switching to its log.
LOG_ANNOUNCE = "log: "


def _options(args: argparse.Namespace) -> WorkerOptions:
    """The worker's settings; ranges were checked by argparse, combinations are checked here."""
    if args.lease is not None and args.lease <= args.heartbeat:
        # Every lease would expire between two heartbeats and its job be run again.
        raise CliError(f"--lease {args.lease:g} must be longer than --heartbeat {args.heartbeat:g}")
    if args.qa_every:
        try:
            openai_settings()  # the key's variable may be renamed in the config file
        except MissingKeyError as exc:
            raise CliError(f"--qa-every: {exc}") from None
    return WorkerOptions(
        where=db_location(args),
        concurrency=args.concurrency,
        queues=tuple(args.queue),
        heartbeat=args.heartbeat,
        lease=args.lease,
        poll=args.poll,
        idle_exit=args.idle_exit,
        grace=args.grace,
        retry=RetryPolicy(base=args.retry_base),
        sim=SimSettings(latency=args.sim_latency, failure_rate=args.sim_failure_rate),
        qa_every=args.qa_every,
        qa_judges=parse_judges(args.qa_judges),
        job_timeout=args.job_timeout,
        max_result_chars=args.max_result_chars,
        max_error_chars=args.max_error_chars,
    )


def log_file_name(worker_id: str) -> str:
    """The log of a detached worker, named after the id `workers list` shows."""
    return f"worker-{worker_id}.log"


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker until SIGTERM/SIGINT (drains) or `--idle-exit`."""
    options = _options(args)
    worker_id = new_worker_id()
    if args.log_dir is not None:
        _redirect_output(args.log_dir / log_file_name(worker_id))
    log = _configure_logging(worker_id)
    try:
        code = run_worker(options, worker_id)
    except BaseException as exc:
        log.error("worker stopped by %s: %s", type(exc).__name__, exc)
        raise
    log.info("worker stopped (exit code %d)", code)
    return code


def _redirect_output(log: Path) -> None:
    """Send stdout and stderr to `log` (owner-only), first announcing it on stdout.

    `workers start` reads the announcement only if this worker dies before registering,
    to point at the log that says why.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private_append(log)
    print(f"{LOG_ANNOUNCE}{log}", flush=True)
    os.dup2(fd, sys.stdout.fileno())
    os.dup2(fd, sys.stderr.fileno())
    os.close(fd)


def _configure_logging(worker_id: str) -> logging.Logger:
    """INFO lines to stderr, each with the time and this worker's id."""
    escaped = worker_id.replace("%", "%%")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {escaped} %(levelname)s %(message)s",
        force=True,
    )
    return logging.getLogger("batchdash.worker")


def _worker_argv(args: argparse.Namespace, log_dir: Path) -> list[str]:
    """The `batchdash worker` command line equivalent to these options."""
    # No --db: the database (maybe a URL with a password) goes through the environment.
    argv = [sys.executable, "-m", "batchdash", "worker"]
    for flag in (
        "concurrency",
        "heartbeat",
        "lease",
        "poll",
        "idle_exit",
        "grace",
        "retry_base",
        "sim_latency",
        "sim_failure_rate",
        "qa_every",
        "qa_judges",
        "job_timeout",
        "max_result_chars",
        "max_error_chars",
    ):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for name in args.queue:
        argv += ["--queue", name]
    return [*argv, "--log-dir", str(log_dir)]


@dataclass(slots=True)
class _Child:
    """A worker `workers start` spawned; `worker_id` is set once it has registered."""

    proc: subprocess.Popen[str]
    worker_id: str | None = None


def cmd_workers_start(args: argparse.Namespace) -> int:
    """Start detached workers (own session, each logging to worker-ID.log in the database's
    state folder on this host).

    Each worker counts as started once it has registered. One that dies or hangs while
    starting is reported (a hung one is stopped); the others are left running.
    """
    _options(args)  # validate before spawning anything
    location = db_location(args)
    folder = pid_dir(location)
    folder.mkdir(parents=True, exist_ok=True)
    argv = _worker_argv(args, folder)
    env = {**os.environ, "BATCHDASH_DB": location.setting}
    children = [
        _Child(
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,  # until the worker switches to its own log
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                cwd=Path.cwd(),
                env=env,
            )
        )
        for _ in range(args.n)
    ]
    _await_registration(children, folder, START_TIMEOUT)
    ok = [c for c in children if c.worker_id is not None]
    counted = f"{len(ok)}" if len(ok) == args.n else f"{len(ok)} of {args.n}"
    print(f"started {counted} workers")
    for child in ok:
        assert child.worker_id is not None and child.proc.stdout is not None
        child.proc.stdout.close()
        log = folder / log_file_name(child.worker_id)
        print(f"  {child.worker_id} (pid {child.proc.pid}), log {log}")
    for child in children:
        if child.worker_id is None:
            print(f"batchdash: error: {_startup_failure(child.proc)}", file=sys.stderr)
    return EXIT_OK if len(ok) == args.n else EXIT_ERROR


def _await_registration(children: list[_Child], folder: Path, timeout: float) -> None:
    """Wait until every child has registered (its PID file appeared) or exited."""
    waiting = {child.proc.pid: child for child in children}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for pid_file in folder.glob("*.pid"):
            record = read_pid_file(pid_file)
            if record is not None and record.pid in waiting:
                waiting.pop(record.pid).worker_id = pid_file.stem
        for pid, child in list(waiting.items()):
            if child.proc.poll() is not None:
                del waiting[pid]
        if waiting:
            time.sleep(0.05)


def _startup_failure(proc: subprocess.Popen[str]) -> str:
    """Why a worker did not start: how it ended, its last words, where its log is.

    A worker still running here never registered: it is stopped, not left half-started.
    """
    hung = proc.poll() is None
    if hung:
        proc.terminate()  # not registered yet: nothing to drain
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    code = proc.wait()
    output = proc.stdout.read().splitlines() if proc.stdout is not None else []
    logs = [line[len(LOG_ANNOUNCE) :] for line in output if line.startswith(LOG_ANNOUNCE)]
    said = [line for line in output if line.strip() and not line.startswith(LOG_ANNOUNCE)]
    if logs:
        with contextlib.suppress(OSError):
            said += [line for line in Path(logs[0]).read_text().splitlines() if line.strip()]
    if hung:
        how = f"did not register within {START_TIMEOUT:g}s and was stopped"
    elif code < 0:
        how = f"exited while starting (killed by {signal.Signals(-code).name})"
    else:
        how = f"exited while starting (exit code {code})"
    message = f"worker pid {proc.pid} {how}"
    if said:
        message += f": {said[-1].strip()}"
    return message + (f"; log {logs[0]}" if logs else "")


def cmd_workers_list(args: argparse.Namespace) -> int:
    """Workers with state, heartbeat age and counts; dead and stale ones are marked."""

    async def load(db: Store) -> tuple[list[Worker], float]:
        await check_workers(db)
        # Heartbeat ages on the clock that stamped them (the server's, on PostgreSQL).
        return await db.read(lambda tx: (tx.workers.list_workers(), tx.stats.clock(time.time())))

    workers, now = run_async(load, args)
    if args.json:
        host = this_host()
        write_json({"workers": [worker_json(w, now, host) for w in workers]})
        return EXIT_OK
    rows = (
        (
            w.id,
            w.state,
            w.host,
            str(w.pid),
            age(w.heartbeat_age(now)),
            ",".join(map(str, w.current_jobs)) or "-",
            str(w.done),
            str(w.failed),
            w.note or "",
        )
        for w in workers
    )
    header = ("ID", "STATE", "HOST", "PID", "HEARTBEAT", "JOBS", "DONE", "FAILED", "NOTE")
    for line in table(header, rows):
        print(line)
    if not workers:
        print("no workers have run on this database yet")
    return EXIT_OK


# --------------------------------------------------------------------------- command line

INTERVAL = Checked(at_least(MIN_INTERVAL), "SECONDS")

#: The options `worker` and `workers start` share, as (flags, click settings).
WORKER_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--concurrency",), {"type": POSITIVE_INT, "default": 4, "help": "Jobs in flight."}),
    (("--queue",), {"type": NON_EMPTY, "multiple": True, "help": "Only these queues."}),
    (("--heartbeat",), {"type": INTERVAL, "default": 2.0, "help": "Seconds between heartbeats."}),
    (("--lease",), {"type": POSITIVE_FLOAT, "help": "Lease seconds (default 5 heartbeats)."}),
    (("--poll",), {"type": INTERVAL, "default": 0.5, "help": "Max seconds between idle polls."}),
    (
        ("--idle-exit",),
        {"type": NON_NEGATIVE_FLOAT, "help": "Exit after this long with nothing to do."},
    ),
    (
        ("--grace",),
        {"type": NON_NEGATIVE_FLOAT, "default": 10.0, "help": "Drain grace on SIGTERM."},
    ),
    (("--retry-base",), {"type": NON_NEGATIVE_FLOAT, "default": 2.0, "help": "First retry delay."}),
    (
        ("--sim-latency",),
        {"type": NON_NEGATIVE_FLOAT, "default": 0.005, "help": "Sim handler seconds."},
    ),
    (("--sim-failure-rate",), {"type": FRACTION, "default": 0.0, "help": "Sim failure rate."}),
    (
        ("--qa-every",),
        {
            "type": POSITIVE_INT,
            "help": "Judge every Nth success of the queue (counted across all workers).",
        },
    ),
    (("--qa-judges",), {"metavar": "A,B", "help": "Judge models (default gpt-4o-mini)."}),
    (
        ("--job-timeout",),
        {
            "type": POSITIVE_FLOAT,
            "help": "Cancel an attempt after this long unless its job sets a timeout.",
        },
    ),
    (
        ("--max-result-chars",),
        {
            "type": POSITIVE_INT,
            "default": 10_000_000,
            "help": "Fail a job whose result JSON is longer.",
        },
    ),
    (
        ("--max-error-chars",),
        {"type": POSITIVE_INT, "default": 65_536, "help": "Truncate longer error texts."},
    ),
)


def _worker_options(fn: F) -> F:
    """Add the options `worker` and `workers start` share."""
    for flags, settings in reversed(WORKER_OPTIONS):
        fn = click.option(*flags, show_default="default" in settings, **settings)(fn)
    return fn


@click.command(
    epilog=example(
        "batchdash worker --queue summaries --concurrency 8",
        "batchdash worker --idle-exit 30 --log-dir logs/",
    )
)
@db_option()
@_worker_options
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Log to DIR/worker-ID.log (owner-only) instead of stderr.",
)
def worker(**_: Any) -> Any:
    """Run a worker in the foreground (SIGTERM or Ctrl-C drains it)."""
    return invoke(cmd_worker, creates=True)


@click.group(cls=Group, epilog=example("batchdash workers start -n 4", "batchdash workers list"))
def workers() -> None:
    """Start, stop or list workers."""


@workers.command("start", epilog=example("batchdash workers start -n 4 --queue summaries"))
@db_option()
@click.option("-n", type=POSITIVE_INT, default=1, show_default=True, help="How many.")
@_worker_options
def workers_start(**_: Any) -> Any:
    """Start N detached workers, each logging to this host's state folder."""
    return invoke(cmd_workers_start, creates=True)


@workers.command(
    "stop",
    epilog=example(
        "batchdash workers stop --timeout 60",
        "batchdash workers stop --host gpu-2",
        "batchdash workers stop --all",
    ),
)
@db_option()
@click.argument("worker_ids", nargs=-1, metavar="[WORKER_ID]...")
@click.option("--host", metavar="HOST", default=None, help="Every worker of this host.")
@click.option("--all", "all", is_flag=True, help="Every running worker, on every host.")
@click.option(
    "--timeout", type=POSITIVE_FLOAT, default=30.0, show_default=True, help="Seconds to wait."
)
def workers_stop(**_: Any) -> Any:
    """Stop workers and wait for them to drain: this host's by SIGTERM (the default), and
    those named (by id, --host or --all) on other hosts through the database."""
    return invoke(cmd_workers_stop)


@workers.command("list", epilog=example("batchdash workers list --json"))
@db_option()
@click.option("--json", is_flag=True, help="As a JSON document.")
def workers_list(**_: Any) -> Any:
    """Workers with state and heartbeat age; dead and stale ones are marked."""
    return invoke(cmd_workers_list)
