"""Worker commands: `worker` (run one in the foreground) and `workers start|stop|list`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core import store
from core.handlers import SimSettings
from core.liveness import pid_alive
from core.pricing import price_table
from core.qa import parse_judges
from core.queue import RetryPolicy
from core.worker import WorkerOptions, check_workers, pid_dir, run_worker
from tui.cli import EXIT_ERROR, EXIT_OK, CliError, add_db_option, db_path, run_async
from tui.fmt import age, table


def _add_worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=int, default=4, help="jobs in flight (default 4)")
    p.add_argument("--queue", action="append", default=[], help="only these queues")
    p.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    p.add_argument("--lease", type=float, default=None, help="lease seconds (5 heartbeats)")
    p.add_argument("--poll", type=float, default=0.5, help="max seconds between idle polls")
    p.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit after this long with nothing to do",
    )
    p.add_argument("--grace", type=float, default=10.0, help="drain grace period on SIGTERM")
    p.add_argument("--retry-base", type=float, default=2.0, help="first retry delay (s)")
    p.add_argument("--sim-latency", type=float, default=0.005, help="sim handler seconds")
    p.add_argument("--sim-failure-rate", type=float, default=0.0, help="sim failure rate")
    p.add_argument(
        "--qa-every", type=int, default=None, metavar="N", help="judge every Nth succeeded job"
    )
    p.add_argument(
        "--qa-judges", default=None, metavar="A,B", help="judge models (default gpt-4o-mini)"
    )
    p.add_argument(
        "--job-timeout",
        type=_positive(float),
        default=None,
        metavar="SECONDS",
        help="cancel an attempt after this long unless its job sets a timeout",
    )
    p.add_argument(
        "--max-result-chars",
        type=_positive(int),
        default=10_000_000,
        metavar="N",
        help="fail a job whose result JSON is longer (default 10,000,000)",
    )
    p.add_argument(
        "--max-error-chars",
        type=_positive(int),
        default=65_536,
        metavar="N",
        help="truncate longer error texts (default 65,536)",
    )


def _positive(kind: type[float] | type[int]) -> Any:
    """An argparse type: a number of `kind` above zero (checked at parse time)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def register(commands: Any) -> None:
    """Add the worker commands to the top-level parser."""
    p = commands.add_parser("worker", help="run a worker in the foreground")
    add_db_option(p)
    _add_worker_options(p)
    p.set_defaults(func=cmd_worker)

    workers = commands.add_parser("workers", help="start, stop or list workers")
    sub = workers.add_subparsers(dest="workers_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("start", help="start N detached workers")
    add_db_option(p)
    p.add_argument("-n", type=int, default=1, help="how many (default 1)")
    _add_worker_options(p)
    p.set_defaults(func=cmd_workers_start)
    p = sub.add_parser("stop", help="SIGTERM this database's workers and wait")
    add_db_option(p)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    p.set_defaults(func=cmd_workers_stop)
    p = sub.add_parser("list", help="workers with state and heartbeat age")
    add_db_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_workers_list)


def _options(args: argparse.Namespace) -> WorkerOptions:
    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    if args.heartbeat <= 0:
        raise CliError("--heartbeat must be positive")
    if args.qa_every is not None and args.qa_every < 1:
        raise CliError("--qa-every must be at least 1")
    price_table()  # a bad price file stops the worker now, not after its paid calls
    if args.qa_every and not os.environ.get("OPENAI_API_KEY"):
        raise CliError("--qa-every: judges need OPENAI_API_KEY (and OPENAI_BASE_URL if not OpenAI)")
    return WorkerOptions(
        db_path=db_path(args),
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


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker until SIGTERM/SIGINT (drains) or `--idle-exit`."""
    return run_worker(_options(args))


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """The `batchdash worker` command line equivalent to these options."""
    argv = [sys.executable, "-m", "tui.cli", "worker", "--db", str(db_path(args))]
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
    return argv


def cmd_workers_start(args: argparse.Namespace) -> int:
    """Start detached workers (own session, logs beside the DB) and wait until they run."""
    _options(args)  # validate before spawning anything
    folder = pid_dir(db_path(args))
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.glob("*.pid"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    procs: list[subprocess.Popen[bytes]] = []
    for index in range(args.n):
        log = folder / f"worker-{stamp}-{index}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                _worker_argv(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                cwd=Path.cwd(),
            )
        procs.append(proc)
    started = _wait_for(lambda: len(set(folder.glob("*.pid")) - before) >= args.n, 15.0)
    if not started:
        # A half-started pool is worse than none: stop what did start, then report.
        for proc in procs:
            proc.terminate()
        raise CliError(f"workers did not report within 15s; see logs in {folder}")
    pids = ", ".join(str(proc.pid) for proc in procs)
    print(f"started {args.n} workers (pids {pids}); logs in {folder}")
    return EXIT_OK


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _running_pids(folder: Path) -> dict[Path, int]:
    """PID files of live processes; files left by dead workers are removed."""
    found = {}
    for pid_file in folder.glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            found[pid_file] = pid
        else:
            pid_file.unlink(missing_ok=True)
    return found


def cmd_workers_stop(args: argparse.Namespace) -> int:
    """SIGTERM every worker of this database, then wait for them to drain and exit."""
    folder = pid_dir(db_path(args))
    running = _running_pids(folder) if folder.exists() else {}
    if not running:
        print("no workers running")
        return EXIT_OK
    for pid in running.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    done = _wait_for(lambda: not any(pid_alive(p) for p in running.values()), args.timeout)
    if not done:
        left = [str(p) for p in running.values() if pid_alive(p)]
        print(
            f"batchdash: error: still running after {args.timeout:g}s: pids {', '.join(left)}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(f"stopped {len(running)} workers")
    return EXIT_OK


def cmd_workers_list(args: argparse.Namespace) -> int:
    """Workers with state, heartbeat age and counts; dead and stale ones are marked."""

    async def load(db: Any) -> list[Any]:
        await check_workers(db)
        return await db.read(store.list_workers)

    workers = run_async(load, args)
    now = time.time()
    if args.json:
        print(json.dumps([w.to_dict(now) for w in workers], indent=2))
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
