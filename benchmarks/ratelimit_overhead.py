"""Rate limiter overhead: queue throughput with a limit set far above the rate vs none.

Enqueues N jobs (default 20,000) of the `sim` handler (a rate-limited handler; latency 0,
so the queue is what is measured) and drains them with 2 worker processes, concurrency 64,
twice per round in the same run: on a queue without a limit (workers pay one small read
a second) and on a queue limited far above the rate (every job is booked in the exchange
transaction and its tokens corrected from usage, but never waits). Rounds alternate the
order; the figure is the median of the per-round ratios. Target: overhead ≤ 10%.

CPU per job is printed too (on a machine other work shares, it varies far less than
wall-clock throughput): the workers' CPU less what starting and stopping them costs
(measured on an empty queue in the same run), plus the PostgreSQL server's CPU with
`--postgres`. Checks every job succeeded and, for the limited queue, that every job was
booked.

    python benchmarks/ratelimit_overhead.py [--jobs 20000] [--rounds 3] [--postgres]

Each variant gets a fresh SQLite file, or with `--postgres` a fresh database on a throwaway
server (tests/pgserver.py; the server of BATCHDASH_TEST_PG_URL when set, whose CPU is not
counted).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PgServer  # noqa: E402

from batchdash.core.db import open_sync_store  # noqa: E402
from batchdash.core.db.location import DbLocation  # noqa: E402
from batchdash.core.db.ports import Tx  # noqa: E402
from batchdash.core.models import JobFilter, NewJob  # noqa: E402

WORKERS = 2
CONCURRENCY = 64
#: Far above any rate this machine reaches: every job is booked, none waits.
HIGH_RPM, HIGH_TPM = 100_000_000, 100_000_000_000


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(server: PgServer | None) -> float:
    """CPU seconds of our PostgreSQL server so far: the postmaster, its reaped children
    (each connection's backend) and its live ones (0 for SQLite or an external server)."""
    if server is None or "host=" not in server.base_url:
        return 0.0
    data = Path(server.base_url.split("host=", 1)[1]) / "data"
    if not data.exists():
        return 0.0
    postmaster = (data / "postmaster.pid").read_text().split()[0]
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile (its time is in the postmaster's)
        pid, ppid = stat.parent.name, fields[1]
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _drain(where: DbLocation, queue: str, server: PgServer | None) -> float:
    """Run the workers on `queue` until it is empty; CPU seconds of them and the server."""
    args = [sys.executable, "-m", "batchdash", "worker", "--db", where.display]
    args += ["--queue", queue, "--concurrency", str(CONCURRENCY), "--sim-latency", "0"]
    args += ["--idle-exit", "0.5", "--heartbeat", "1"]
    cpu = _children_cpu() + _server_cpu(server)
    procs = [subprocess.Popen(args, cwd=ROOT, stderr=subprocess.DEVNULL) for _ in range(WORKERS)]
    for proc in procs:
        proc.wait()
    return _children_cpu() + _server_cpu(server) - cpu


def _fresh(folder: str, name: str, server: PgServer | None) -> DbLocation:
    """A new empty store for one variant."""
    if server is not None:
        return DbLocation(url=server.create_database())
    return DbLocation(path=Path(folder) / f"{name}.db")


def startup_cpu(folder: str, server: PgServer | None) -> float:
    """CPU seconds workers (and the server) spend starting, idling out and stopping."""
    where = _fresh(folder, "startup", server)
    with open_sync_store(where) as db:
        db.write(lambda tx: tx.queues.ensure_queue("empty", time.time()))
    return min(_drain(where, "empty", server) for _ in range(2))


def run_variant(
    where: DbLocation, queue: str, n: int, limited: bool, server: PgServer | None
) -> tuple[float, float]:
    """Enqueue `n` jobs into `queue`, drain them with the workers; returns (jobs/s, CPU
    seconds of the workers and the server)."""
    jobs = [NewJob(key=f"job-{i}", payload={"model": "m", "text": f"hello {i}"}) for i in range(n)]
    with open_sync_store(where) as db:

        def setup(tx: Tx) -> None:
            now = time.time()
            tx.jobs.enqueue(queue, "sim", jobs, now, None)
            if limited:
                tx.limits.set_limit(queue, "", HIGH_RPM, HIGH_TPM, 10.0, now)

        db.write(setup)
    cpu = _drain(where, queue, server)
    with open_sync_store(where) as db:
        flt = JobFilter(queues=(queue,))
        done = db.read(lambda tx: tx.jobs.list_jobs(flt, with_bodies=False))
        booked = db.read(lambda tx: tx.limits.list_limits(queue))
    assert all(j.status == "succeeded" for j in done) and len(done) == n
    if limited:
        assert booked[0].cur_requests + booked[0].prev_requests == n, "not every job was booked"
    first = min(j.started_at or 0.0 for j in done)
    last = max(j.finished_at or 0.0 for j in done)
    return n / (last - first), cpu


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="Run on PostgreSQL.")
    options = parser.parse_args()
    server = PgServer.start() if options.postgres else None
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            fixed = startup_cpu(folder, server)
            print(f"starting and stopping {WORKERS} workers: {fixed:.2f} s CPU (taken off)")
            for i in range(options.rounds):
                for limited in (False, True) if i % 2 == 0 else (True, False):
                    name = f"{'limited' if limited else 'free'}-{i}"
                    where = _fresh(folder, name, server)
                    rate, cpu = run_variant(where, name, options.jobs, limited, server)
                    rates[limited].append(rate)
                    cpus[limited].append((cpu - fixed) / options.jobs * 1e6)
                ratios.append(rates[True][-1] / rates[False][-1])
                cpu_ratios.append(cpus[True][-1] / cpus[False][-1])
                print(
                    f"round {i + 1}: no limit {rates[False][-1]:,.0f} jobs/s "
                    f"({cpus[False][-1]:,.1f} µs CPU/job), limit far above "
                    f"{rates[True][-1]:,.0f} jobs/s ({cpus[True][-1]:,.1f} µs CPU/job): "
                    f"{ratios[-1]:.2f}x"
                )
    finally:
        if server:
            server.stop()
    overhead = 1 - statistics.median(ratios)
    verdict = "ok" if overhead <= 0.10 else "OVER TARGET"
    store = "PostgreSQL" if server else "SQLite"
    print(
        f"rate limiter overhead on {store} (median of {options.rounds}): {overhead:.1%} "
        f"of throughput [{verdict}, target ≤ 10%], "
        f"{statistics.median(cpu_ratios) - 1:+.1%} CPU per job "
        f"({statistics.median(cpus[False]):,.1f} → {statistics.median(cpus[True]):,.1f} µs)"
    )


if __name__ == "__main__":
    main()
