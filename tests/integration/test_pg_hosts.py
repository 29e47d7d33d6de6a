"""PostgreSQL shared by many hosts: one queue, exactly-once work, and a host that dies.

Three worker processes each report a different host (BATCHDASH_HOST), so none can see the
others' PIDs: a killed host's jobs come back only through lease expiry and rescue, as
they would across machines.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg

from batchdash.core import snapshot
from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.postgres.connection import SCHEMA_VERSION
from batchdash.core.models import JobStatus, Worker, WorkerState
from batchdash.core.snapshot.worker_rows import workers
from tests.conftest import cli, spawn, wait_until
from tests.integration.test_workers import write_jobs
from tests.pgserver import PgServer

JOBS = 5000
FAST = ("--heartbeat", "0.2", "--lease", "1", "--poll", "0.05", "--concurrency", "16")


def test_three_hosts_share_one_queue_and_a_killed_host_loses_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    where = DbLocation(url=pg_url)
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", JOBS, sim={"latency": 0.02})
    cli("enqueue", "--handler", "sim", str(jobs_file), BATCHDASH_DB=pg_url)
    hosts = ["host-a", "host-b", "host-c"]
    workers = {
        host: spawn("worker", *FAST, BATCHDASH_DB=pg_url, BATCHDASH_HOST=host) for host in hosts
    }
    with open_sync_store(where) as s:

        def succeeded() -> int:
            return s.read(lambda tx: tx.stats.status_totals()).get(JobStatus.SUCCEEDED, 0)

        wait_until(lambda: succeeded() >= JOBS // 5, 60, what="a fifth of the jobs done")
        victim = workers.pop("host-c")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        wait_until(lambda: succeeded() == JOBS, 120, what="every job done by the survivors")
        jobs = s.read(lambda tx: tx.jobs.list_jobs())
        events = s.read(lambda tx: tx.events.list_events(None))
        seen_hosts = {w.host for w in s.read(lambda tx: tx.workers.list_workers())}
    for proc in workers.values():
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert {j.status for j in jobs} == {JobStatus.SUCCEEDED}
    successes = Counter(e.job_id for e in events if e.kind == "succeeded")
    assert len(successes) == JOBS and set(successes.values()) == {1}, "each job succeeded once"
    assert any(e.kind == "rescued" for e in events), "the dead host's jobs were rescued"
    assert seen_hosts == set(hosts)


def test_init_from_two_hosts_at_once_migrates_once(pg_server: PgServer) -> None:
    url = pg_server.create_database()  # empty: no schema yet
    procs = [spawn("init", BATCHDASH_DB=url), spawn("init", BATCHDASH_DB=url)]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
    with open_sync_store(DbLocation(url=url)) as s:
        assert s.read(lambda tx: tx.queues.list_queues()) == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM batchdash_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
    pg_server.drop_database(url)


def test_heartbeat_ages_follow_the_server_clock_not_a_skewed_host(pg_url: str) -> None:
    """A viewer whose clock runs an hour fast still sees a fresh worker as fresh."""
    where = DbLocation(url=pg_url)
    worker = Worker(
        id="w-skew", host="elsewhere", pid=1, started_at=0.0, heartbeat_at=0.0,
        heartbeat_interval=1.0, state=WorkerState.IDLE,
    )  # fmt: skip
    skewed_now = time.time() + 3600
    with open_sync_store(where) as s:
        s.write(lambda tx: tx.workers.register_worker(worker))
        rows = s.read(lambda tx: workers(tx, skewed_now))
        summary = s.read(lambda tx: snapshot.summary(tx, skewed_now))
    assert rows[0].age < 60 and rows[0].health == "ok"
    assert not any(w.needs_attention for w in summary.workers)
    listed = json.loads(cli("workers", "list", "--json", BATCHDASH_DB=pg_url).stdout)
    assert listed["workers"][0]["heartbeat_age"] < 60
