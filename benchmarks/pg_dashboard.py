"""Dashboard benchmark on PostgreSQL with 1M and 10M jobs (not a test).

The measurements are `benchmarks/dashboard.py`'s (imported, not copied): the real app's
refresh cycle (`cycle_seconds`: snapshot read + apply) as a median over 30 cycles, first
paint of a fresh process, `--once` and `--once --json` against the
`python -c "import rich, sqlite3"` floor measured in the same run (and that floor plus
`import psycopg`, which a PostgreSQL `--once` cannot avoid). Here they run on a
PostgreSQL server (a throwaway one from tests/pgserver.py, or BATCHDASH_TEST_PG_URL's),
and the refresh is measured for several views: the default one, a status filter, a text
filter, and both filters on a page deep in the list, that page read both by OFFSET (as
the dashboard did) and by keyset, after the previous page's last row (as `]` reads it:
numbered by the pages turned, so a text-filtered page counts no rows in front of it; the
same page with those rows counted, as before, is measured beside it), and a status with a
text none of its jobs hold, or a term of one key in 100. Each status + text count is also
timed against the same count by the planner's join alone (the count before a status's jobs
were walked: core/db/postgres/text_walk.py).

Targets at 1M and 10M jobs: refresh ≤ 50 ms median, first paint ≤ 1 s, `--once` ≤ 3×
the floor.

    python benchmarks/pg_dashboard.py [--jobs 1000000,10000000] [--keep]
    python benchmarks/pg_dashboard.py --jobs N --measure URL   # a database kept earlier

The jobs are made server-side (`INSERT … SELECT FROM generate_series`) into the tables
the migrations create, the way a restore (`pg_restore`) loads a dump: triggers off during
the load, secondary indexes built after it, trigger-kept counts rebuilt from the rows,
then VACUUM ANALYZE. `--keep` leaves the databases (and a private server) for a rerun
with `BATCHDASH_TEST_PG_URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from batchdash.core.db import open_sync_store  # noqa: E402
from batchdash.core.db.location import DbLocation  # noqa: E402
from batchdash.core.db.ports import Page  # noqa: E402
from batchdash.core.models import JobFilter, JobStatus  # noqa: E402
from batchdash.core.snapshot import View  # noqa: E402
from benchmarks.dashboard import child_app, page_reads, wall  # noqa: E402
from benchmarks.pg_fill import fill  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

#: The views whose refresh is measured: name → (filter, order, offset).
VIEWS: dict[str, View] = {
    "default": View(),
    "status=failed": View(flt=JobFilter(statuses=(JobStatus.FAILED,))),
    "text 'timeout'": View(flt=JobFilter(text="timeout")),
    "failed + 'timeout', page 51 by OFFSET": View(
        flt=JobFilter(statuses=(JobStatus.FAILED,), text="timeout"), offset=5_000
    ),
    "failed + 'timeout', page 51 by keyset, rows in front counted": View(
        flt=JobFilter(statuses=(JobStatus.FAILED,), text="timeout"), offset=5_000
    ),
    "failed + 'timeout', page 51 by keyset": View(
        flt=JobFilter(statuses=(JobStatus.FAILED,), text="timeout"), offset=5_000
    ),
    "default, page 1001 by OFFSET": View(offset=100_000),
    "default, page 1001 by keyset": View(offset=100_000),
    # A status and a text that do not go together: no walk of the status's jobs can stop
    # early (its budget spent, the read is the planner's join, as before).
    "succeeded + 'timeout' (none match)": View(
        flt=JobFilter(statuses=(JobStatus.SUCCEEDED,), text="timeout")
    ),
    "pending + 'timeout' (none match)": View(
        flt=JobFilter(statuses=(JobStatus.PENDING,), text="timeout")
    ),
    "failed + key term 'doc-0099' (1 in 100 keys)": View(
        flt=JobFilter(statuses=(JobStatus.FAILED,), text="doc-0099")
    ),
}


def keyset(where: DbLocation, view: View, *, numbered: bool) -> View:
    """The same page as `view`, read after its previous page's last row (the way the
    dashboard's `]` reads it), instead of from its offset; that row is found once here.
    `numbered`: with the page's number, as the dashboard knows it from the pages turned
    (a text-filtered page then counts no rows in front of it), else without."""
    with open_sync_store(where, readonly=True) as db:
        [before] = db.read(
            lambda tx: tx.jobs.list_jobs(
                view.flt, limit=1, offset=view.offset - 1, order=view.order, with_bodies=False
            )
        )
    number = view.offset // view.limit + 1 if numbered else None
    return replace(view, offset=0, page=Page(before), page_number=number)


CYCLES = 30


def run_child(view: str, url: str) -> dict[str, float]:
    """Measure the app on `view` in a fresh process (the URL goes through the environment)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", view],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "BATCHDASH_DB": url},
    )
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def measure(url: str, n: int, fill_seconds: float | None) -> dict[str, Any]:
    """Every figure for one database (filled earlier when `fill_seconds` is None)."""
    filled = "filled earlier" if fill_seconds is None else f"filled in {fill_seconds:.0f} s"
    print(f"\n== {n:,} jobs ({filled}) on {_server_settings(url)}")
    figures: dict[str, Any] = {"jobs": n, "fill_s": fill_seconds, "views": {}, "text_counts": {}}
    for name in VIEWS:
        got = run_child(name, url)
        figures["views"][name] = got
        print(
            f"refresh [{name}]: median {got['refresh_median'] * 1000:.1f} ms, "
            f"p95 {got['refresh_p95'] * 1000:.1f} ms (read {got['read_median'] * 1000:.1f} ms), "
            f"first paint {got['first_paint']:.2f} s, RSS {got['peak_rss_mb']:.0f} MB"
        )
    views = figures["views"]
    numbered, counted = (
        views[f"failed + 'timeout', page 51 by keyset{tail}"]["refresh_median"]
        for tail in ("", ", rows in front counted")
    )
    print(
        f"text-filtered page 51 by keyset: numbered {numbered * 1000:.1f} ms, rows in front "
        f"counted {counted * 1000:.1f} ms ({counted / numbered:.1f}×)"
    )
    for flt in dict.fromkeys(v.flt for v in VIEWS.values() if v.flt.statuses and v.flt.text):
        walked, joined = text_counts(url, flt)
        label = f"{flt.statuses[0]} + {flt.text!r}"
        figures["text_counts"][label] = (walked, joined)
        print(
            f"status + text count [{label}]: {walked * 1000:.1f} ms, by the join alone "
            f"(as before) {joined * 1000:.1f} ms ({joined / walked:.1f}×)"
        )
    env = {**os.environ, "BATCHDASH_DB": url}
    once = wall([sys.executable, "-m", "batchdash", "--once"], env=env)
    once_json = wall([sys.executable, "-m", "batchdash", "--once", "--json"], env=env)
    floor = wall([sys.executable, "-c", "import rich, sqlite3"])
    # What no PostgreSQL `--once` can go below: the same floor plus importing the driver.
    driver = wall([sys.executable, "-c", "import rich, sqlite3, psycopg"])
    figures.update(once=once, once_json=once_json, floor=floor, driver_floor=driver)
    print(
        f"--once: {once * 1000:.0f} ms (--json {once_json * 1000:.0f} ms), floor "
        f"{floor * 1000:.0f} ms → {once / floor:.1f}× (--json {once_json / floor:.1f}×)"
        f"   target ≤ 3×; importing psycopg too: {driver * 1000:.0f} ms "
        f"({driver / floor:.1f}× the floor, --once {once / driver:.2f}× that)"
    )
    pages = page_reads(DbLocation(url=url))
    worst = max(pages, key=pages.__getitem__)
    figures["pages_worst"] = (worst, pages[worst])
    print(
        f"first job page under each status × sort order ({len(pages)}): median "
        f"{statistics.median(pages.values()) * 1000:.1f} ms, worst {pages[worst] * 1000:.1f} ms "
        f"({worst})"
    )
    figures["qa_read"], figures["qa_read_rows"] = qa_read(url)
    print(
        f"QA pane read (qa_summary, best of 3): {figures['qa_read'] * 1000:.1f} ms "
        f"(from the rows: {figures['qa_read_rows'] * 1000:.0f} ms)"
    )
    return figures


def text_counts(url: str, flt: JobFilter) -> tuple[float, float]:
    """Median seconds of a refresh's capped count of `flt` (statuses and a text), as the
    store counts it and by the planner's join alone (the count before the walk), each run
    as often as a dashboard runs it (psycopg prepares a statement at its 6th run)."""
    from batchdash.core.snapshot.job_rows import TEXT_COUNT_CAP

    def median(count: Any) -> float:
        times = []
        with open_sync_store(DbLocation(url=url), readonly=True) as db:
            for _ in range(CYCLES // 3):
                start = time.perf_counter()
                db.read(count)
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    walked = median(lambda tx: tx.jobs.count_jobs_upto(flt, TEXT_COUNT_CAP))
    joined = median(lambda tx: tx.jobs._joined_count(flt, TEXT_COUNT_CAP, None))
    return walked, joined


def _server_settings(url: str) -> str:
    """The server's version and the settings the figures depend on most."""
    import psycopg

    with psycopg.connect(url) as conn:
        got = [
            conn.execute(f"SHOW {name}").fetchone()
            for name in ("server_version", "shared_buffers", "work_mem")
        ]
    version, buffers, work_mem = (row[0] if row else "?" for row in got)
    return f"PostgreSQL {version} (shared_buffers {buffers}, work_mem {work_mem})"


def qa_read(url: str) -> tuple[float, float]:
    """Best-of-3 reads of the QA summary (the QA tab's refresh, and part of `--once`): as the
    store reads it (kept tables), and computed from the rows as before migration 0006."""
    from batchdash.core.db.postgres.qa import _BUCKET
    from batchdash.core.db.qashared import summarize

    def from_rows(tx: Any) -> Any:
        return summarize(tx.qa._query, None, 10, "%s", _BUCKET, results_have_jobs=True)

    kept, rows = [], []
    with open_sync_store(DbLocation(url=url), readonly=True) as db:
        for _ in range(3):
            start = time.perf_counter()
            db.read(lambda tx: tx.qa.qa_summary())
            kept.append(time.perf_counter() - start)
            start = time.perf_counter()
            db.read(from_rows)
            rows.append(time.perf_counter() - start)
    return min(kept), min(rows)


def main() -> int:
    """Start (or reuse) a server, fill each size, measure, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", default="1000000,10000000")
    parser.add_argument("--keep", action="store_true", help="leave the databases and server")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help="only measure this filled database (its URL)")
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, int(args.jobs), None)
        return 0
    if args.child:
        started = time.perf_counter()
        where = DbLocation(url=os.environ["BATCHDASH_DB"])
        view = VIEWS[args.child]
        if "by keyset" in args.child:  # its first paint includes finding that row
            view = keyset(where, view, numbered=args.child.endswith("by keyset"))
        got = asyncio.run(child_app(where, started, CYCLES, view))
        print(json.dumps(got))
        return 0
    # An installed package has its bytecode compiled at install time (see dashboard.py).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "core", "tui"], cwd=ROOT, check=True)
    server = PgServer.start()
    print(f"server: {server.base_url}")
    try:
        for n in (int(x) for x in args.jobs.split(",")):
            url = _database(server, n)
            fill_seconds = fill(url, n)
            measure(url, n, fill_seconds)
            if not args.keep:
                server.drop_database(url)
    finally:
        if not args.keep:
            server.stop()
    return 0


def _database(server: PgServer, n: int) -> str:
    """A new database migrated by the store itself (the schema a user's `init` makes)."""
    url = server.create_database()
    with open_sync_store(DbLocation(url=url)):
        pass
    print(f"database for {n:,} jobs: {url}")
    return url


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    raise SystemExit(main())
