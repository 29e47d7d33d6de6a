"""Dashboard benchmark on a store with 1,000,000 jobs (not a test).

Measures, in one run on one machine:

- one refresh cycle of the real app (snapshot read + keyed diff), median of 30;
- time to first paint of the real app (fresh process: imports, open, first snapshot shown);
- the app's peak RSS after those refreshes;
- `batchdash --once` wall time, against `python -c "import rich, sqlite3"` as the floor;
- the naive approach (every row loaded into a DataTable) on 10,000 and 100,000 jobs.

Targets at 1M jobs: refresh ≤ 50 ms median, first paint ≤ 1 s, peak RSS ≤ 200 MB,
`--once` ≤ 3× the floor.

    python benchmarks/dashboard.py [--jobs 1000000] [--keep DIR]

`--keep DIR` reuses (or leaves) the seeded databases there; seeding 1M jobs takes a while.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchdash.core.db import open_sync_store  # noqa: E402
from batchdash.core.db.location import DbLocation  # noqa: E402
from batchdash.core.models import JobFilter, JobStatus, NewJob, Outcome  # noqa: E402
from batchdash.core.snapshot import View  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402

SIZE = (120, 36)
CHUNK = 50_000


# --------------------------------------------------------------------------- seeding


def seed(path: Path, n: int) -> None:
    """Seed `path` in a child process unless it exists, then flush it to disk.

    In a child, so this process stays small; flushed, so the measurements that follow do
    not share the disk with the write-back of a freshly written database.
    """
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--seed", str(n), str(path)], check=True)
        os.sync()


def write_jobs(path: Path, n: int) -> None:
    """n jobs over 3 queues: ~94% succeeded, 5% failed, 1% running, the rest pending.

    Finished jobs are spread over the last 2 hours so the throughput window has data.
    Written through the store's own write functions (enqueue, claim, finish).
    """
    now = time.time()
    with open_sync_store(path) as db:
        for start in range(0, n, CHUNK):
            queue_name = ("papers", "chat", "summaries")[(start // CHUNK) % 3]
            jobs = [
                NewJob(key=f"doc-{i:07d}", payload={"i": i, "text": "lorem ipsum " * 4})
                for i in range(start, min(n, start + CHUNK))
            ]
            db.write(lambda c, q=queue_name, j=jobs: c.jobs.enqueue(q, "sim", j, now - 7300, None))
        finished = int(n * 0.99)
        done = 0
        while done < finished:
            size = min(CHUNK, finished - done)
            at = now - 7200 + 7200 * done / finished
            db.write(lambda c, at=at, size=size, done=done: _finish_chunk(c, size, at, done))
            done += size
        db.write(lambda c: c.jobs.claim("bench-w2", "tok-run", n // 100, 600.0, (), now))


def _finish_chunk(conn: Any, size: int, at: float, done: int) -> None:
    claims = conn.jobs.claim("bench-w1", f"tok-{done}", size, 600.0, (), at - 2)
    outcomes = []
    for k, claim in enumerate(claims):
        failed = (done + k) % 19 == 0
        outcomes.append(
            Outcome(
                job_id=claim.job_id,
                token=claim.token,
                status="failed" if failed else "succeeded",
                finished_at=at + k * 0.001,
                result_json=None if failed else '{"output": "ok"}',
                error="HTTP 500: server error" if failed else None,
                error_kind="http_500" if failed else None,
                input_tokens=100,
                output_tokens=50,
                cost=0.0001,
            )
        )
    conn.jobs.finish("bench-w1", outcomes)


# --------------------------------------------------------------------------- children


async def child_app(
    where: Path | DbLocation, started: float, cycles: int, view: View | None = None
) -> dict[str, float]:
    """In a fresh process: first paint, refresh cycles and peak RSS of the real app.

    `view` (filter, order, page) replaces the app's default view from the first read on.
    """
    from batchdash.tui.app import BatchDashApp

    location = where if isinstance(where, DbLocation) else DbLocation(path=where)
    app = BatchDashApp(location, poll_every=0)
    if view is not None:
        app.view = replace(
            app.view, flt=view.flt, order=view.order, offset=view.offset, page=view.page
        )
    async with app.run_test(size=SIZE):
        await app.wait_for_snapshot()
        first_paint = time.perf_counter() - started
        totals = []
        reads = []
        for _ in range(cycles):
            await app.wait_for_snapshot()
            read, apply = app.cycle_seconds
            totals.append(read + apply)
            reads.append(read)
    rss_mb = peak_rss_mb()
    return {
        "first_paint": first_paint,
        "refresh_median": statistics.median(totals),
        "refresh_p95": sorted(totals)[int(len(totals) * 0.95) - 1],
        "read_median": statistics.median(reads),
        "peak_rss_mb": rss_mb,
    }


async def child_naive(path: Path, started: float) -> dict[str, float]:
    """In a fresh process: every row into a DataTable, as a naive dashboard would."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Naive(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("ID", "KEY", "QUEUE", "STATE", "TRY", "ERROR")
            with open_sync_store(path, readonly=True) as db:
                jobs = db.tx.jobs.list_jobs(JobFilter())
            table.add_rows(
                (j.id, j.key, j.queue, j.status, j.attempts, j.error or "") for j in jobs
            )

    app = Naive()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first_paint = time.perf_counter() - started
    return {
        "first_paint": first_paint,
        "peak_rss_mb": peak_rss_mb(),
    }


def page_reads(path: Path) -> dict[str, float]:
    """Best-of-3 read time of the first page for every status filter and sort order.

    The refresh above shows the unfiltered list; pressing a status key or `s` (sort) must stay
    as fast, whether the status holds 900k jobs or a handful.
    """
    from batchdash.core import snapshot

    timings = {}
    with open_sync_store(path, readonly=True) as db:
        for status in (None, *JobStatus):
            flt = JobFilter(statuses=(status,) if status else ())
            for order in snapshot.ORDERS:
                runs = []
                for _ in range(3):
                    start = time.perf_counter()
                    snapshot.job_page(db.tx, flt, order=order)
                    runs.append(time.perf_counter() - start)
                timings[f"{status or 'all'}, {order}"] = min(runs)
    return timings


def run_child(mode: str, path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def wall(argv: list[str], runs: int = 7, env: dict[str, str] | None = None) -> float:
    """Median wall time of a command (in `env`, when given)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, cwd=ROOT, check=False, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- main


def main() -> int:
    """Seed, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", nargs=2, metavar=("N", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        write_jobs(Path(args.seed[1]), int(args.seed[0]))
        return 0
    if args.child:
        started = time.perf_counter()
        mode, db = args.child
        coro = child_app(Path(db), started, 30) if mode == "app" else child_naive(Path(db), started)
        print(json.dumps(asyncio.run(coro)))
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="batchdash-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / f"jobs-{args.jobs}.db"
    t0 = time.perf_counter()
    seed(big, args.jobs)
    print(f"store: {args.jobs:,} jobs in {big} (seeded/reused in {time.perf_counter() - t0:.1f}s)")

    ours = run_child("app", big)
    # An installed package has its bytecode compiled at install time; an editable checkout
    # under PYTHONDONTWRITEBYTECODE would recompile every run and time the compiler instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT, check=True)
    once = wall([sys.executable, "-m", "batchdash", "--db", str(big), "--once"])
    once_json = wall([sys.executable, "-m", "batchdash", "--db", str(big), "--once", "--json"])
    floor = wall([sys.executable, "-c", "import rich, sqlite3"])
    print(
        f"refresh cycle (read + diff): median {ours['refresh_median'] * 1000:.1f} ms, "
        f"p95 {ours['refresh_p95'] * 1000:.1f} ms (read {ours['read_median'] * 1000:.1f} ms)"
        f"   target ≤ 50 ms"
    )
    print(f"first paint: {ours['first_paint']:.2f} s   target ≤ 1 s")
    print(f"peak RSS: {ours['peak_rss_mb']:.0f} MB   target ≤ 200 MB")
    print(
        f"--once: {once * 1000:.0f} ms (--json {once_json * 1000:.0f} ms), floor "
        f"{floor * 1000:.0f} ms → {once / floor:.1f}× the floor   target ≤ 3×"
    )
    pages = page_reads(big)
    worst = max(pages, key=pages.__getitem__)
    print(
        f"job page under each status filter × sort order ({len(pages)} pages): median "
        f"{statistics.median(pages.values()) * 1000:.1f} ms, worst {pages[worst] * 1000:.1f} ms "
        f"({worst})   target ≤ 50 ms"
    )
    for n in (10_000, 100_000):
        small = folder / f"jobs-{n}.db"
        seed(small, n)
        naive = run_child("naive", small)
        mine = run_child("app", small)
        print(
            f"naive DataTable at {n:,} jobs: first paint {naive['first_paint']:.2f} s, "
            f"RSS {naive['peak_rss_mb']:.0f} MB; batchdash at {n:,}: "
            f"{mine['first_paint']:.2f} s, {mine['peak_rss_mb']:.0f} MB "
            f"(naive/ours {naive['first_paint'] / mine['first_paint']:.1f}×)"
        )
    if args.keep is None:
        print(f"(databases left in {folder}; delete it or pass --keep to reuse)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    raise SystemExit(main())
