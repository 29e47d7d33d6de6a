"""Queue throughput on PostgreSQL: batchdash vs pgqueuer vs procrastinate vs a raw SQL ceiling.

Starts a throwaway server (tests/pgserver.py: initdb + pg_ctl into a temp folder, or the
server of BATCHDASH_TEST_PG_URL), gives each system its own fresh database on it, enqueues
N no-op jobs (default 20,000) and drains them with 2 and then 4 worker processes, all in
the same run. `--batch` (default 64) is each system's knob for jobs per process: pgqueuer's
`batch_size` (jobs per dequeue; its in-flight cap, `max_concurrent_tasks`, is left unset as
by default: 128 measured the same), procrastinate's and batchdash's `--concurrency` (jobs in
flight), the raw loop's LIMIT. Throughput is measured from the first claim to the last
completion, read from each system's own records after the workers exit; completions are
counted there too, and a job completed twice counts as a duplicate. The windows are short
(about a second at 20,000 jobs): expect ±50% between runs on a busy machine, and compare
the ratios of one run. pgqueuer slows as its backlog grows (4–5k jobs/s at 100,000 jobs).

- batchdash: jobs enqueued in one transaction (`queue.enqueue` on `open_store(URL)`), then
  `python -m batchdash worker --concurrency 64 --idle-exit 0.5` processes (the jobs carry
  handler `noop`) with the URL in BATCHDASH_DB, never in argv. Per job: a claim (lease,
  claim token, a `claimed` event), a finish (a `succeeded` event) and the store's count
  bookkeeping; per process at most ten change notifications a second (for dashboards).
  Timing and duplicates come from `batchdash export` (started_at and finished_at of the
  jobs, `succeeded` events).
- pgqueuer: schema by `pgq install` (its default durability: all tables logged), one batch
  `Queries.enqueue`, worker processes running `pgqueuer.run(factory, mode=drain,
  batch_size=64)` on uvloop (what `pgq run` runs; `pgq run` itself fails in pgqueuer 1.6.0),
  a QueueManager on asyncpg (psycopg if asyncpg is missing) with a no-op async entrypoint.
  Per batch of picked jobs: one UPDATE that also inserts a `picked` pgqueuer_log row per
  job; per buffered batch of completions: one DELETE from the queue that also inserts a
  `successful` pgqueuer_log row per job; a statement trigger sends NOTIFY on each change.
  Timing and counts come from pgqueuer_log.
- procrastinate: schema by `procrastinate schema --apply`, one `batch_defer_async`, then
  `procrastinate worker --one-shot --concurrency 64` processes (psycopg pool), a no-op async
  task. Per job: `procrastinate_fetch_job` (one job per call) and `procrastinate_finish_job`
  (the row is kept, as by default), each its own transaction; row triggers append a
  `started` and a `succeeded` row to procrastinate_events. Timing and counts come from
  those events.
- raw SQL: the ceiling. A minimal table (id, status, payload) with one partial index;
  processes loop `UPDATE … WHERE id = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED LIMIT 64))
  RETURNING id` and one batch completion UPDATE, autocommit, nothing else: no leases,
  events, retries, heartbeats or notifications.

Durability is the server's, the same for all four: the throwaway server runs with
fsync=off, synchronous_commit=off and full_page_writes=off (its data dies with the run);
each library keeps its default commit behaviour (the commits described above, nothing
deferred or batched beyond that). With BATCHDASH_TEST_PG_URL it is that server's settings;
the report prints the ones in force.

Prints jobs/s per system and worker count, the ratio batchdash / pgqueuer (target ≥ 1.0
with 4 processes, 0 duplicates) and each system against the raw ceiling. Also the CPU per
job of the server (the postmaster and all its processes, from /proc, for a server on this
machine) and of the worker processes, over the drain: on a machine with few cores the two
share them, and unlike jobs/s these hardly move with other load (the batchdash / pgqueuer
ratio of server CPU is printed too). Until batchdash's
PostgreSQL store exists its half stops with a one-line message; `--only baselines` runs the
other three, `--only batchdash,pgqueuer` just those (quicker to iterate on). Needs
`pip install 'batchdash[bench]'` and PostgreSQL's server binaries.

    python benchmarks/pg_queue_throughput.py [--jobs 20000] [--workers 2,4] [--only baselines]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_baselines  # noqa: E402
from pg_baselines import Result  # noqa: E402
from pgserver import PgServer  # noqa: E402

#: A system's benchmark: (database URL, jobs, worker processes, batch) -> Result.
Bench = Callable[[str, int, int, int], Result]


# --------------------------------------------------------------------------- batchdash


def bench_batchdash(url: str, n: int, workers: int, batch: int) -> Result:
    """batchdash: one enqueue transaction, `batchdash worker --handler noop` processes."""
    from batchdash.core import queue
    from batchdash.core.db import open_store, parse_location
    from batchdash.core.models import NewJob

    jobs = [NewJob(key=f"job-{i}", payload={"i": i}) for i in range(n)]

    async def enqueue() -> float:
        async with await open_store(parse_location(url)) as db:
            start = time.perf_counter()
            await queue.enqueue(db, "bench", jobs, handler="noop")
            return time.perf_counter() - start

    enqueue_s = asyncio.run(enqueue())
    worker = [sys.executable, "-m", "batchdash", "worker", "--concurrency", str(batch)]
    argvs = [[*worker, "--idle-exit", "0.5"]] * workers
    server_us, worker_us = pg_baselines.drain(argvs, url, n, batchdash_env(url))
    with tempfile.TemporaryDirectory() as tmp:
        done = _export(url, Path(tmp) / "jobs.jsonl", "--status", "succeeded")
        events = _export(url, Path(tmp) / "events.jsonl", "--events")
    first = min(job["started_at"] for job in done)
    last = max(job["finished_at"] for job in done)
    per_job = Counter(e["job_id"] for e in events if e["kind"] == "succeeded")
    completions = sum(per_job.values())
    return Result(
        n / enqueue_s,
        len(done) / (last - first),
        completions,
        completions - len(per_job),
        server_us,
        worker_us,
    )


def batchdash_env(url: str) -> dict[str, str]:
    """A batchdash process's environment: the URL in BATCHDASH_DB, never in argv."""
    return {"BATCHDASH_DB": url}


def _export(url: str, path: Path, *args: str) -> list[dict[str, Any]]:
    """Rows of `batchdash export … -o path` (JSONL)."""
    pg_baselines.run_all(
        [[sys.executable, "-m", "batchdash", "export", *args, "-o", str(path)]],
        url,
        batchdash_env(url),
    )
    with path.open() as rows:
        return [json.loads(row) for row in rows]


# --------------------------------------------------------------------------- the run

SYSTEMS: dict[str, Bench] = {
    "batchdash": bench_batchdash,
    "pgqueuer": pg_baselines.bench_pgqueuer,
    "procrastinate": pg_baselines.bench_procrastinate,
    "raw SQL ceiling": pg_baselines.bench_raw,
}
BASELINES = [name for name in SYSTEMS if name != "batchdash"]


def run(server: PgServer, names: list[str], n: int, workers: int, batch: int) -> dict[str, Result]:
    """Each system on a fresh database of `server`, one after the other."""
    results = {}
    for name in names:
        url = server.create_database()
        try:
            result = SYSTEMS[name](url, n, workers, batch)
        finally:
            server.drop_database(url)
        if result.completed - result.duplicates < n:
            done = result.completed - result.duplicates
            raise RuntimeError(f"{name}: only {done} of {n} jobs completed")
        results[name] = result
        print(f"  {name}, {workers} processes: {result.drain_per_s:,.0f} jobs/s", flush=True)
    return results


def durability(server: PgServer) -> str:
    """The server's durability settings as measured under, e.g. `fsync=off, …`."""
    import psycopg

    names = ("fsync", "synchronous_commit", "full_page_writes")
    with psycopg.connect(server.base_url) as conn:
        values = [conn.execute(f"SHOW {name}").fetchall()[0][0] for name in names]
    return ", ".join(f"{name}={value}" for name, value in zip(names, values, strict=True))


def report(n: int, batch: int, settings: str, runs: dict[int, dict[str, Result]]) -> None:
    """Print the figures per worker count and the ratios the target is stated in."""
    driver = pg_baselines.pgqueuer_driver()
    print(f"\n{n:,} no-op jobs; per process up to {batch} jobs per claim (pgqueuer, raw SQL)")
    print("or in flight (batchdash, procrastinate); pgqueuer's in-flight cap left unset")
    print(f"pgqueuer on {driver}; server: {settings}")
    for workers, rows in runs.items():
        print(f"\n{workers} worker processes")
        print(
            f"{'':18}{'enqueue/s':>12}{'claim+complete/s':>18}{'completed':>11}{'duplicates':>12}"
            f"{'server µs/job':>15}{'worker µs/job':>15}"
        )
        for name, r in rows.items():
            print(
                f"{name:18}{r.enqueue_per_s:>12,.0f}{r.drain_per_s:>18,.0f}"
                f"{r.completed:>11,}{r.duplicates:>12}{r.server_us:>15,.0f}{r.worker_us:>15,.0f}"
            )
        if "raw SQL ceiling" in rows:
            raw = rows["raw SQL ceiling"].drain_per_s
            for name, r in rows.items():
                if name != "raw SQL ceiling":
                    print(f"{name} vs raw ceiling: {r.drain_per_s / raw:.0%}")
        if "batchdash" in rows and "pgqueuer" in rows:
            ratio = rows["batchdash"].drain_per_s / rows["pgqueuer"].drain_per_s
            target = " (target >= 1.0 with 4 processes)" if workers == 4 else ""
            print(f"batchdash / pgqueuer: {ratio:.2f}{target}")
            cpu = rows["batchdash"].server_us / (rows["pgqueuer"].server_us or float("nan"))
            print(f"server CPU per job, batchdash / pgqueuer: {cpu:.2f} (lower is better)")


def _systems(parser: argparse.ArgumentParser, only: str | None) -> list[str]:
    """The systems `--only` names (every one without it), or a usage error."""
    if only is None:
        return list(SYSTEMS)
    if only == "baselines":
        return BASELINES
    names = [name.strip() for name in only.split(",")]
    unknown = [name for name in names if name not in SYSTEMS]
    if unknown:
        parser.error(f"--only: unknown system {unknown[0]!r} (known: {', '.join(SYSTEMS)})")
    return names


def main() -> int:
    """Run the systems at each worker count; exit 1 on a batchdash duplicate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", default="2,4", help="comma-separated process counts")
    parser.add_argument("--batch", type=int, default=64, help="jobs per claim / in flight")
    parser.add_argument(
        "--only", help="`baselines` (all but batchdash) or comma-separated system names"
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    names = _systems(parser, args.only)
    server = PgServer.start()
    try:
        settings = durability(server)
        runs = {w: run(server, names, args.jobs, w, args.batch) for w in counts}
    finally:
        server.stop()
    report(args.jobs, args.batch, settings, runs)
    dupes = sum(rows["batchdash"].duplicates for rows in runs.values() if "batchdash" in rows)
    return 1 if dupes else 0


if __name__ == "__main__":
    sys.exit(main())
