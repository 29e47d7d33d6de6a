"""Queue throughput: batchdash vs huey's SQLite storage vs a raw UPDATE…RETURNING ceiling.

Enqueues N jobs (default 100,000) and drains them with 2 worker processes and a no-op
handler, three ways, in the same run on the same machine:

- batchdash: `batchdash worker --handler noop` processes (leases, claim tokens, events,
  counts table, group commit) — measured from the first claim to the last completion;
- huey: `SqliteStorage.enqueue` / `dequeue` + `put_data` of the result, 2 processes;
- raw SQL: 2 processes looping a batch `UPDATE … RETURNING` claim and a batch completion,
  with no events, leases or tokens, on a minimal table (id, status, payload) with one
  partial index: the ceiling for SQLite on this machine;
- raw SQL on batchdash's table: the same loop on a database batchdash created, so it pays
  for the schema the dashboard needs (status/time indexes, count triggers) but not for
  the queue's events, leases, tokens and worker process. Dividing the three figures
  separates the cost of the schema from the cost of the queue machinery.

Every variant runs twice, all at the same SQLite `synchronous` level each time: `NORMAL`
(batchdash's product setting) and `FULL` (huey's default, an fsync per commit). Comparing
batchdash at NORMAL with huey at FULL would mostly compare fsyncs. batchdash's store
always sets NORMAL, so the FULL run pins the level from outside (benchmarks/synchronous.py,
benchmark-only); huey's level is set through its `SqliteStorage` (`fsync=True` is FULL, a
subclass adds NORMAL, which huey's options do not offer); the raw loops set it themselves.
Each run checks the level really applied.

Prints jobs/s and the ratios the targets are stated in (claim+complete ≥ 3× huey and
≥ 50% of the raw ceiling) per level, and checks that no job ran twice. Needs
`pip install huey`.

    python benchmarks/queue_throughput.py [--jobs 100000] [--synchronous NORMAL,FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchdash.core import queue  # noqa: E402
from batchdash.core.db import open_store, open_sync_store  # noqa: E402
from batchdash.core.models import JobFilter, NewJob  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synchronous  # noqa: E402

#: `PRAGMA synchronous` values by name.
SYNC_VALUES = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}

WORKERS = 2
BATCH = 64


def bench_batchdash(folder: Path, n: int, level: str) -> tuple[float, float, int]:
    """(enqueue jobs/s, claim+complete jobs/s, duplicates) for batchdash at `level`."""
    with synchronous.force(level):
        return _bench_batchdash(folder, n, level)


def _bench_batchdash(folder: Path, n: int, level: str) -> tuple[float, float, int]:
    db_path = folder / f"batchdash-{level}.db"
    jobs = [NewJob(key=f"job-{i}", payload={"i": i}) for i in range(n)]

    async def enqueue() -> float:
        db = await open_store(db_path)
        start = time.perf_counter()
        await queue.enqueue(db, "bench", jobs, handler="noop")
        elapsed = time.perf_counter() - start
        await db.close()
        return elapsed

    enqueue_s = asyncio.run(enqueue())
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(synchronous.__file__)),
                level,
                "worker",
                "--db",
                str(db_path),
                "--concurrency",
                str(BATCH),
                "--idle-exit",
                "0.5",
                "--heartbeat",
                "1",
            ],
            cwd=ROOT,
        )
        for _ in range(WORKERS)
    ]
    for proc in procs:
        proc.wait()
    with open_sync_store(db_path) as s:
        _check_level(s.conn, level)
        first, last, done = s.conn.execute(
            "SELECT min(started_at), max(finished_at), count(*) FROM jobs "
            "WHERE status = 'succeeded'"
        ).fetchone()
        dupes = s.conn.execute(
            "SELECT count(*) FROM (SELECT job_id FROM events WHERE kind = 'succeeded' "
            "GROUP BY job_id HAVING count(*) > 1)"
        ).fetchone()[0]
        assert s.tx.jobs.count_jobs(JobFilter(statuses=("succeeded",))) == n
    assert done == n, f"only {done} of {n} jobs succeeded"
    return n / enqueue_s, n / (last - first), dupes


# --------------------------------------------------------------------------- huey


def _huey_storage(path: str, level: str) -> Any:
    """huey's SqliteStorage at `level`: its `fsync` option gives FULL (True) or OFF (False)."""
    from huey.storage import SqliteStorage

    class NormalSqliteStorage(SqliteStorage):  # type: ignore[misc]
        """huey's storage at synchronous=NORMAL, which its options cannot ask for."""

        def _create_connection(self) -> sqlite3.Connection:
            conn: sqlite3.Connection = super()._create_connection()
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn

    if level == "NORMAL":
        storage = NormalSqliteStorage(name="bench", filename=path, timeout=60)
    else:
        storage = SqliteStorage(name="bench", filename=path, timeout=60, fsync=level == "FULL")
    _check_level(storage.conn, level)
    return storage


def _huey_worker(path: str, level: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    storage = _huey_storage(path, level)
    seen = 0
    first = None
    while True:
        data = storage.dequeue()
        if data is None:
            break
        first = first or time.time()
        storage.put_data(data, b"ok")  # the no-op task's result, keyed by the task
        seen += 1
    out.put((first, time.time(), seen))


def bench_huey(folder: Path, n: int, level: str) -> tuple[float, float, int]:
    """(enqueue jobs/s, dequeue+complete jobs/s, duplicates) for huey's SqliteStorage."""
    path = str(folder / f"huey-{level}.db")
    storage = _huey_storage(path, level)
    start = time.perf_counter()
    for i in range(n):
        storage.enqueue(f"task-{i}".encode())
    enqueue_s = time.perf_counter() - start
    results = _run_procs(_huey_worker, path, level)
    total = sum(r[2] for r in results)
    first = min(r[0] for r in results if r[0])
    last = max(r[1] for r in results)
    keys = storage.conn.execute("SELECT count(DISTINCT key) FROM kv").fetchone()[0]
    return n / enqueue_s, n / (last - first), total - keys


# --------------------------------------------------------------------------- raw ceiling


#: (claim, complete) statements of the raw loop: on the minimal table, on batchdash's.
RAW_SQL = {
    "minimal": (
        "UPDATE jobs SET status = 1 WHERE id IN (SELECT id FROM jobs WHERE status = 0 "
        "ORDER BY id LIMIT ?) RETURNING id",
        "UPDATE jobs SET status = 2 WHERE id = ?",
    ),
    "batchdash": (
        "UPDATE jobs SET status = 'running' WHERE id IN (SELECT id FROM jobs "
        "INDEXED BY jobs_claim WHERE status = 'pending' AND batch_id IS NULL "
        "ORDER BY priority DESC, run_after, id LIMIT ?) RETURNING id",
        "UPDATE jobs SET status = 'succeeded' WHERE id = ?",
    ),
}


def _raw_connect(path: str, level: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {level}")
    _check_level(conn, level)
    return conn


def _raw_worker(path: str, schema: str, level: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    claim_sql, complete_sql = RAW_SQL[schema]
    conn = _raw_connect(path, level)
    ids: list[int] = []
    first = None
    while True:
        conn.execute("BEGIN IMMEDIATE")
        claimed = [r[0] for r in conn.execute(claim_sql, (BATCH,))]
        conn.execute("COMMIT")
        if not claimed:
            break
        first = first or time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(complete_sql, [(i,) for i in claimed])
        conn.execute("COMMIT")
        ids += claimed
    out.put((first, time.time(), ids))


def bench_raw(folder: Path, n: int, level: str) -> tuple[float, float, int]:
    """(enqueue jobs/s, claim+complete jobs/s, duplicates) for the bare SQL loop."""
    path = str(folder / f"raw-{level}.db")
    conn = _raw_connect(path, level)
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, status INTEGER, payload TEXT)")
    conn.execute("CREATE INDEX jobs_pending ON jobs (id) WHERE status = 0")
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO jobs (status, payload) VALUES (0, ?)", ((f'{{"i":{i}}}',) for i in range(n))
    )
    conn.execute("COMMIT")
    enqueue_s = time.perf_counter() - start
    drain, dupes = _drain_raw(path, "minimal", n, level)
    return n / enqueue_s, drain, dupes


def bench_raw_on_ours(folder: Path, n: int, level: str) -> tuple[float, float, int]:
    """(enqueue jobs/s, claim+complete jobs/s, duplicates): the raw loop, our schema."""
    path = folder / f"raw-batchdash-{level}.db"
    jobs = [NewJob(key=f"job-{i}", payload={"i": i}) for i in range(n)]

    async def enqueue() -> float:
        async with await open_store(path) as db:
            start = time.perf_counter()
            await queue.enqueue(db, "bench", jobs, handler="noop")
            return time.perf_counter() - start

    with synchronous.force(level):
        enqueue_s = asyncio.run(enqueue())
    drain, dupes = _drain_raw(str(path), "batchdash", n, level)
    return n / enqueue_s, drain, dupes


def _drain_raw(path: str, schema: str, n: int, level: str) -> tuple[float, int]:
    """(claim+complete jobs/s, duplicates) of the raw loop in WORKERS processes."""
    results = _run_procs(_raw_worker, path, schema, level)
    ids = [i for r in results for i in r[2]]  # type: ignore[attr-defined]
    first = min(r[0] for r in results if r[0])
    last = max(r[1] for r in results)
    assert len(set(ids)) == n
    return n / (last - first), len(ids) - len(set(ids))


def _check_level(conn: sqlite3.Connection, level: str) -> None:
    """Refuse to report figures measured at another `synchronous` level than claimed."""
    actual = conn.execute("PRAGMA synchronous").fetchone()[0]
    assert actual == SYNC_VALUES[level], f"synchronous is {actual}, expected {level}"


def _run_procs(target: object, *args: object) -> list[tuple[float, float, object]]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, out)) for _ in range(WORKERS)]  # type: ignore[arg-type]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return results


def run_level(n: int, level: str) -> dict[str, tuple[float, float, int]]:
    """All four variants at one `synchronous` level: name -> (enqueue/s, drain/s, dupes)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        return {
            "batchdash": bench_batchdash(folder, n, level),
            "huey": bench_huey(folder, n, level),
            "raw SQL, minimal table": bench_raw(folder, n, level),
            "raw SQL, batchdash's table": bench_raw_on_ours(folder, n, level),
        }


def report(n: int, level: str, rows: dict[str, tuple[float, float, int]]) -> None:
    """Print one level's figures and ratios."""
    ours, huey = rows["batchdash"], rows["huey"]
    raw, raw_ours = rows["raw SQL, minimal table"], rows["raw SQL, batchdash's table"]
    print(f"\n{n:,} jobs, {WORKERS} worker processes, no-op handler, synchronous={level}")
    print(f"{'':28}{'enqueue/s':>12}{'claim+complete/s':>18}{'duplicates':>12}")
    for name, (enq, drain, dupes) in rows.items():
        print(f"{name:28}{enq:>12,.0f}{drain:>18,.0f}{dupes:>12}")
    print(f"claim+complete vs huey:                      {ours[1] / huey[1]:.1f}x (target >= 3x)")
    print(f"claim+complete vs raw ceiling:               {ours[1] / raw[1]:.0%} (target >= 50%)")
    print(f"raw loop on batchdash's table vs ceiling:    {raw_ours[1] / raw[1]:.0%} (schema cost)")
    print(
        f"claim+complete vs raw loop, batchdash table: {ours[1] / raw_ours[1]:.0%} (machinery cost)"
    )
    print(f"enqueue vs huey:                             {ours[0] / huey[0]:.1f}x")


def main() -> None:
    """Run the four variants at each level and print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--synchronous",
        default="NORMAL,FULL",
        help="comma-separated SQLite synchronous levels, each applied to every variant",
    )
    args = parser.parse_args()
    levels = [level.strip().upper() for level in args.synchronous.split(",")]
    results = {level: run_level(args.jobs, level) for level in levels}
    for level, rows in results.items():
        report(args.jobs, level, rows)
    if len(results) > 1:
        ratios = ", ".join(
            f"{level} {rows['batchdash'][1] / rows['huey'][1]:.1f}x"
            for level, rows in results.items()
        )
        print(f"\nclaim+complete vs huey at the same synchronous level: {ratios}")


if __name__ == "__main__":
    main()
