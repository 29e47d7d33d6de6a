"""The three PostgreSQL baselines of pg_queue_throughput.py: pgqueuer, procrastinate, raw SQL.

Each `bench_*` function takes the URL of a fresh, empty database, enqueues `n` no-op jobs,
drains them with `workers` separate processes and returns a `Result`. The worker processes
load this module (`python pg_baselines.py pgqueuer-worker N`, `procrastinate
--app=pg_baselines.procrastinate_app worker`), so they read the database URL from the
environment (`BENCH_PG_URL`; `pgq` reads `PGDSN`), never from argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

#: The environment variable the worker processes read the database URL from.
URL_VAR = "BENCH_PG_URL"

#: Seconds a worker process may take before the run is given up.
TIMEOUT = 900


@dataclass
class Result:
    """One system's figures for one worker count (`server_us`, `worker_us`: CPU per job of
    the server and of the worker processes, µs)."""

    enqueue_per_s: float
    drain_per_s: float
    completed: int
    duplicates: int
    server_us: float = 0.0
    worker_us: float = 0.0


def _ticks(pid: int) -> tuple[int, int]:
    """(own CPU ticks, ticks of reaped children) of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _children(parent: int) -> list[int]:
    """The live child processes of `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def server_cpu_seconds(url: str) -> float:
    """CPU the whole server has used so far: the postmaster, its live children (backends,
    background processes) and the children it reaped (closed connections). Only for a
    server on this machine; 0.0 where /proc cannot tell (another host, another OS)."""
    with psycopg.connect(url) as conn:
        # Read while connected: once the connection closes, its backend's /proc entry goes.
        try:
            stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
            postmaster = int(stat.rsplit(")", 1)[1].split()[1])
            own, reaped = _ticks(postmaster)
        except OSError:
            return 0.0
        live = 0
        for child in _children(postmaster):
            with contextlib.suppress(OSError):  # one that exited meanwhile is in `reaped` next
                live += _ticks(child)[0]
    return (own + reaped + live) / os.sysconf("SC_CLK_TCK")


def drain(
    argvs: list[list[str]], url: str, n: int, extra_env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Run the worker processes (`run_all`); returns the CPU per job (µs) of the server and
    of the workers."""
    settle(url)
    before = server_cpu_seconds(url), _children_cpu_seconds()
    run_all(argvs, url, extra_env)
    server = server_cpu_seconds(url) - before[0]
    return server / n * 1e6, (_children_cpu_seconds() - before[1]) / n * 1e6


def settle(url: str) -> None:
    """Write out what earlier runs left dirty before a drain is measured: the server's
    checkpoints and background writes count as its CPU, and would otherwise land in the
    window of whichever system runs next. Needs a superuser (the throwaway server's); a
    server that refuses is measured as it is."""
    with psycopg.connect(url, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
        conn.execute("CHECKPOINT")


def _children_cpu_seconds() -> float:
    """CPU used so far by this process's exited (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def env_for(url: str) -> dict[str, str]:
    """The environment of a worker process: ours plus the URL (never in argv)."""
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    # `pgq` reads its DSN from PGDSN.
    return {**os.environ, URL_VAR: url, "PGDSN": url, "PYTHONPATH": path}


def run_all(argvs: list[list[str]], url: str, extra_env: dict[str, str] | None = None) -> None:
    """Start every command at once (one worker process each) and wait for all to exit 0."""
    env = {**env_for(url), **(extra_env or {})}
    procs = [
        subprocess.Popen(argv, env=env, cwd=HERE, stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    for argv, proc in zip(argvs, procs, strict=True):
        _, err = proc.communicate(timeout=TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} exited {proc.returncode}: {err[-2000:]}")


def timed_counts(url: str, sql: str) -> Result:
    """A Result from `sql` returning (first start, last finish, completions, distinct jobs)."""
    with psycopg.connect(url) as conn:
        first, last, done, distinct = conn.execute(sql).fetchone()  # type: ignore[misc]
    return Result(0.0, done / (last - first).total_seconds(), done, done - distinct)


# --------------------------------------------------------------------------- pgqueuer


@asynccontextmanager
async def pgqueuer_factory() -> AsyncIterator[Any]:
    """`pgq run` factory: a QueueManager on asyncpg (psycopg if absent) with a no-op job."""
    from pgqueuer import QueueManager
    from pgqueuer.models import Job

    async with _pgqueuer_queries(os.environ[URL_VAR]) as queries:
        manager = QueueManager(queries)

        @manager.entrypoint("noop")
        async def noop(job: Job) -> None:
            """The job: nothing."""

        yield manager


@asynccontextmanager
async def _pgqueuer_queries(url: str) -> AsyncIterator[Any]:
    """pgqueuer's Queries on the driver its CLI prefers: asyncpg, else psycopg."""
    from pgqueuer import Queries

    try:
        import asyncpg
    except ImportError:
        from pgqueuer import PsycopgDriver

        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            yield Queries(PsycopgDriver(conn))
        return
    from pgqueuer import AsyncpgDriver

    conn = await asyncpg.connect(url)
    try:
        yield Queries(AsyncpgDriver(conn))
    finally:
        await conn.close()


def pgqueuer_worker(batch: int) -> None:
    """One pgqueuer worker process until the queue is empty.

    What `pgq run pg_baselines:pgqueuer_factory --mode drain --batch-size N` does (the same
    `pgqueuer.run` supervisor on uvloop); that command fails in pgqueuer 1.6.0 with this
    typer ("'str' object has no attribute 'name'" from its --log-level default).
    """
    import uvloop
    from pgqueuer import run
    from pgqueuer.types import QueueExecutionMode

    uvloop.run(run(pgqueuer_factory, batch_size=batch, mode=QueueExecutionMode.drain))


def pgqueuer_driver() -> str:
    """The driver pgqueuer runs on here (shown in the report)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "psycopg"
    return "asyncpg"


def bench_pgqueuer(url: str, n: int, workers: int, batch: int) -> Result:
    """pgqueuer: `pgq install`, one batch enqueue, drain-mode worker processes."""
    pgq = [str(BIN / "pgq")]
    run_all([[*pgq, "install"]], url)

    async def enqueue() -> float:
        async with _pgqueuer_queries(url) as queries:
            start = time.perf_counter()
            await queries.enqueue(
                ["noop"] * n, [f'{{"i":{i}}}'.encode() for i in range(n)], [0] * n
            )
            return time.perf_counter() - start

    enqueue_s = asyncio.run(enqueue())
    cpu = drain([[sys.executable, __file__, "pgqueuer-worker", str(batch)]] * workers, url, n)
    # Every pick and every completion writes a pgqueuer_log row stamped with now().
    result = timed_counts(
        url,
        "SELECT (SELECT min(created) FROM pgqueuer_log WHERE status = 'picked'), "
        "max(created), count(*), count(DISTINCT job_id) "
        "FROM pgqueuer_log WHERE status = 'successful'",
    )
    result.enqueue_per_s, (result.server_us, result.worker_us) = n / enqueue_s, cpu
    return result


# --------------------------------------------------------------------------- procrastinate


def _procrastinate_app(url: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop(i: int) -> None:
        """The job: nothing."""

    return app


def __getattr__(name: str) -> Any:
    """`procrastinate_app`, the App `procrastinate --app=pg_baselines.procrastinate_app` loads.

    Built on first access, so that the other systems' worker processes, which load this
    module too, do not pay for importing procrastinate before they start.
    """
    if name == "procrastinate_app":
        return _procrastinate_app(os.environ[URL_VAR])
    raise AttributeError(name)


def bench_procrastinate(url: str, n: int, workers: int, concurrency: int) -> Result:
    """procrastinate: `schema --apply`, one batch defer, `worker --one-shot` processes."""
    cli = [str(BIN / "procrastinate"), "--app=pg_baselines.procrastinate_app"]
    run_all([[*cli, "schema", "--apply"]], url)
    app = _procrastinate_app(url)

    async def defer() -> float:
        async with app.open_async():
            start = time.perf_counter()
            await app.tasks["noop"].batch_defer_async(*({"i": i} for i in range(n)))
            return time.perf_counter() - start

    enqueue_s = asyncio.run(defer())
    worker = [*cli, "worker", "--one-shot", "--concurrency", str(concurrency)]
    cpu = drain([worker] * workers, url, n)
    # Status triggers append a procrastinate_events row (at = now()) per state change.
    result = timed_counts(
        url,
        "SELECT (SELECT min(at) FROM procrastinate_events WHERE type = 'started'), "
        "max(at), count(*), count(DISTINCT job_id) "
        "FROM procrastinate_events WHERE type = 'succeeded'",
    )
    result.enqueue_per_s, (result.server_us, result.worker_us) = n / enqueue_s, cpu
    return result


# --------------------------------------------------------------------------- raw SQL ceiling

RAW_CLAIM = (
    "UPDATE jobs SET status = 'running' WHERE id = ANY(ARRAY(SELECT id FROM jobs "
    "WHERE status = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)) RETURNING id"
)
RAW_COMPLETE = "UPDATE jobs SET status = 'succeeded' WHERE id = ANY(%s)"


def _raw_worker(url: str, batch: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Claim a batch, complete it, until nothing is left; report (first, last, ids)."""
    ids: list[int] = []
    first = None
    with psycopg.connect(url, autocommit=True) as conn:
        while claimed := [r[0] for r in conn.execute(RAW_CLAIM, (batch,))]:
            first = first or time.time()
            conn.execute(RAW_COMPLETE, (claimed,))
            ids += claimed
    out.put((first, time.time(), ids))


def bench_raw(url: str, n: int, workers: int, batch: int) -> Result:
    """The ceiling: a minimal table and the claim/complete loop, nothing else."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "status text NOT NULL, payload jsonb NOT NULL)"
        )
        conn.execute("CREATE INDEX jobs_pending ON jobs (id) WHERE status = 'pending'")
        start = time.perf_counter()
        conn.execute(
            "INSERT INTO jobs (status, payload) "
            "SELECT 'pending', p::jsonb FROM unnest(%s::text[]) p",
            ([f'{{"i":{i}}}' for i in range(n)],),
        )
        enqueue_s = time.perf_counter() - start
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(url, batch, out)) for _ in range(workers)]
    settle(url)
    cpu_before = server_cpu_seconds(url), _children_cpu_seconds()
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    server_us = (server_cpu_seconds(url) - cpu_before[0]) / n * 1e6
    worker_us = (_children_cpu_seconds() - cpu_before[1]) / n * 1e6
    ids = [i for r in results for i in r[2]]
    first = min(r[0] for r in results if r[0])
    last = max(r[1] for r in results)
    rate = len(ids) / (last - first)
    return Result(n / enqueue_s, rate, len(ids), len(ids) - len(set(ids)), server_us, worker_us)


if __name__ == "__main__":
    # `python pg_baselines.py pgqueuer-worker BATCH`: a pgqueuer worker process.
    pgqueuer_worker(int(sys.argv[2]))
