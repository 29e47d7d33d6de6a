"""`jobs list`, `retry`, `cancel`, `resume` and `export` take the dashboard's `--filter`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import cli


def _fail_six(tmp_path: Path, db_path: Path | str) -> None:
    """Three `tr-*` and three `ab-*` jobs, all failed by the sim handler."""
    for prefix, queue in (("tr-", "translate"), ("ab-", "abstracts")):
        lines = [json.dumps({"key": f"{prefix}{i}", "payload": {"i": i}}) for i in range(3)]
        (tmp_path / f"{queue}.jsonl").write_text("\n".join(lines) + "\n")
        cli("enqueue", str(tmp_path / f"{queue}.jsonl"), "--queue", queue, "--handler", "sim",
            "--max-attempts", "1", "--db", str(db_path))  # fmt: skip
    cli("worker", "--sim-failure-rate", "1", "--sim-latency", "0", "--idle-exit", "0.2",
        "--poll", "0.02", "--heartbeat", "0.1", "--db", str(db_path))  # fmt: skip


@pytest.fixture
def failed_db(tmp_path: Path, db_path: Path) -> Path:
    """Six failed jobs in a SQLite file (see `_fail_six`)."""
    _fail_six(tmp_path, db_path)
    return db_path


@pytest.fixture
def failed_any_db(tmp_path: Path, any_db: str) -> str:
    """Six failed jobs on each back end (see `_fail_six`)."""
    _fail_six(tmp_path, any_db)
    return any_db


def _keys(db: Path | str, *args: str) -> list[str]:
    rows = json.loads(cli("jobs", "list", "--json", "--db", str(db), *args).stdout)["jobs"]
    return sorted(row["key"] for row in rows)


def test_jobs_list_says_how_many_match_beyond_its_limit(failed_any_db: str) -> None:
    def last_line(*args: str) -> str:
        return cli("jobs", "list", "--db", failed_any_db, *args).stdout.splitlines()[-1]

    assert last_line() == "6 of 6 jobs"
    assert last_line("--limit", "2", "--filter", "status:failed") == "2 of 6 jobs"
    # A text filter is counted row by row: exactly, up to jobs.LIST_COUNT_CAP.
    assert last_line("--limit", "1", "--filter", "status:failed tr-") == "1 of 3 jobs"
    assert last_line("--filter", "status:failed tr-") == "3 of 3 jobs"


def test_a_capped_count_says_there_are_more(capsys: pytest.CaptureFixture[str]) -> None:
    from batchdash.tui.cli.jobs import _print_jobs

    _print_jobs(iter([]), (100_000, False))
    assert capsys.readouterr().out.splitlines()[-1] == "0 of 100000+ jobs"


def test_jobs_list_and_export_take_the_filter_language(failed_any_db: str) -> None:
    failed_db = failed_any_db
    assert _keys(failed_db, "--filter", "status:failed key:tr-*") == ["tr-0", "tr-1", "tr-2"]
    # --filter narrows together with --queue and ids.
    assert _keys(failed_db, "--filter", "key:*-1", "--queue", "abstracts") == ["ab-1"]
    out = cli("export", "--filter", "key:ab-* status:failed", "--db", str(failed_db)).stdout
    table = cli("export", "--format", "csv", "--queue", "translate", "--db", str(failed_db)).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted((r["key"], r["status"]) for r in rows) == [
        (f"tr-{i}", "failed") for i in range(3)
    ]
    # The timeline: each of the six jobs enqueued, then failed once, in order.
    events = cli("export", "--events", "--db", str(failed_db)).stdout
    timeline = [json.loads(line) for line in events.splitlines()]
    per_job = {e["job_id"]: [] for e in timeline if e["job_id"] is not None}
    for e in timeline:
        if e["job_id"] is not None:
            per_job[e["job_id"]].append(e["kind"])
    assert len(per_job) == 6
    assert all(k[0] == "enqueued" and k[-1] == "failed" and k.count("failed") == 1
               for k in per_job.values()), per_job  # fmt: skip
    # With a filter, the timeline of the matching jobs only (paged, in order).
    narrowed = cli("export", "--events", "--filter", "key:tr-*", "--db", str(failed_db)).stdout
    mine = [json.loads(line) for line in narrowed.splitlines()]
    tr_ids = {int(r["id"]) for r in rows}  # CSV: ids as text
    assert {e["job_id"] for e in mine} == tr_ids
    assert mine == [e for e in timeline if e["job_id"] in tr_ids]
    # Orders and a limit page through the same rows on both back ends.
    orders = {"newest": "ab-2 ab-1 ab-0 tr-2", "oldest": "tr-0 tr-1 tr-2 ab-0"}
    for order, first in (orders | {"key": "ab-0 ab-1 ab-2 tr-0"}).items():
        rows = json.loads(cli("jobs", "list", "--json", "--order", order, "--limit", "4",
                              "--db", str(failed_db)).stdout)["jobs"]  # fmt: skip
        assert " ".join(r["key"] for r in rows) == first, order
    assert sorted(json.loads(line)["key"] for line in out.splitlines()) == ["ab-0", "ab-1", "ab-2"]


def test_retry_cancel_and_resume_act_on_the_filtered_jobs_only(failed_any_db: str) -> None:
    failed_db = db = failed_any_db
    assert cli("retry", "--filter", "key:tr-*", "--db", db).stdout == "retried 3 jobs\n"
    assert _keys(failed_db, "--status", "pending") == ["tr-0", "tr-1", "tr-2"]
    proc = cli("cancel", "--filter", "key:tr-1", "--db", db)
    assert proc.stdout.startswith("cancelled 1 pending jobs;")
    assert _keys(failed_db, "--status", "cancelled") == ["tr-1"]
    cli("queue", "pause", "translate", "--db", db)
    assert (
        "resumed queues: translate"
        in cli("resume", "--filter", "queue:translate", "--db", db).stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("jobs", "list", "--filter", "status:faild"), "--filter: "),
        (
            ("retry", "--filter", "status:failed", "--status", "failed"),
            "--filter status: and --status both given: use one of them",
        ),
        (("cancel", "--filter", "id:3", "4"), "--filter id: and job ids both given"),
    ],
)
def test_a_bad_or_conflicting_filter_is_one_line(
    failed_db: Path, args: tuple[str, ...], message: str
) -> None:
    proc = cli(*args, "--db", str(failed_db), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("batchdash: error: " + message) and proc.stderr.count("\n") == 1
