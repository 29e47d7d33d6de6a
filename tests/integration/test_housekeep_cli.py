"""Housekeeping from the command line: `--tag` and `tag:` filters, `--since`/`--until`,
`batches list --state` and `prune`, each with its bad input as one line and exit 2."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli, wait_until
from tests.integration.test_batches import write_requests


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _keys(db: Path | str, *args: str) -> list[str]:
    out = json.loads(cli("jobs", "list", "--json", "--db", str(db), *args).stdout)
    return sorted(job["key"] for job in out["jobs"])


def test_enqueue_tags_jobs_and_the_filter_finds_them(tmp_path: Path, db_path: Path) -> None:
    jobs = _write(
        tmp_path / "jobs.jsonl",
        [
            {"key": "a", "payload": {}, "tags": ["red"]},
            {"key": "b", "payload": {}},
            {"key": "c", "payload": {}, "tags": ["red", "blue"]},
        ],
    )
    db = str(db_path)
    cli("enqueue", str(jobs), "--handler", "noop", "--tag", "nightly", "--db", db)
    assert _keys(db, "--filter", "tag:nightly") == ["a", "b", "c"]
    assert _keys(db, "--filter", "tag:red") == ["a", "c"]
    assert _keys(db, "--filter", "tag:blue,red key:c*") == ["c"]
    shown = cli("jobs", "show", "3", "--db", db).stdout
    assert "     tags: blue nightly red\n" in shown
    as_json = json.loads(cli("jobs", "show", "3", "--json", "--db", db).stdout)
    assert as_json["tags"] == ["blue", "nightly", "red"]
    exported = cli("export", "--filter", "tag:blue", "--db", db).stdout.splitlines()
    assert [json.loads(line)["key"] for line in exported] == ["c"]
    cancelled = cli("cancel", "--filter", "tag:blue", "--db", db).stdout
    assert cancelled.startswith("cancelled 1 pending jobs;")
    assert _keys(db, "--status", "cancelled") == ["c"]
    # Enqueued again with another tag: the keys are skipped and keep their own tags.
    cli("enqueue", str(jobs), "--handler", "noop", "--tag", "other", "--db", db)
    assert _keys(db, "--filter", "tag:other") == []
    # The payload never carries the tags.
    assert json.loads(cli("jobs", "show", "1", "--json", "--db", db).stdout)["job"]["payload"] == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tag", "two words"), "batchdash: error: --tag: bad tag 'two words': 1-64 letters"),
        (("--tag", "a,b"), "batchdash: error: --tag: bad tag 'a,b': 1-64 letters"),
    ],
)
def test_a_bad_tag_is_one_line_and_nothing_is_enqueued(
    tmp_path: Path, db_path: Path, args: tuple[str, ...], message: str
) -> None:
    jobs = _write(tmp_path / "jobs.jsonl", [{"key": "a", "payload": {}}])
    proc = cli("enqueue", str(jobs), "--handler", "noop", *args, "--db", str(db_path), check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(message)
    assert len(proc.stderr.splitlines()) == 1 and not db_path.exists()


def test_a_bad_tags_field_names_its_line(tmp_path: Path, db_path: Path) -> None:
    jobs = _write(
        tmp_path / "jobs.jsonl",
        [{"key": "a", "payload": {}, "tags": ["ok"]}, {"key": "b", "payload": {}, "tags": "x"}],
    )
    proc = cli("enqueue", str(jobs), "--handler", "noop", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first == f"batchdash: error: {jobs}:2: tags must be a list of strings"
    assert not db_path.exists()
    cli("init", "--db", str(db_path))
    proc = cli("jobs", "list", "--filter", "tag:", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert proc.stderr == "batchdash: error: --filter: tag: needs a value (e.g. tag:nightly)\n"


def test_since_and_until_select_by_creation_time(tmp_path: Path, db_path: Path) -> None:
    jobs = _write(tmp_path / "jobs.jsonl", [{"key": "a", "payload": {}}])
    db = str(db_path)
    cli("enqueue", str(jobs), "--handler", "noop", "--db", db)
    assert _keys(db, "--since", "1h") == ["a"]
    assert _keys(db, "--until", "1h") == []
    assert _keys(db, "--since", "2000-01-01", "--until", "2999-01-01T00:00Z") == ["a"]
    assert cli("export", "--since", "2999-01-01", "--db", db).stdout == ""
    assert cli("export", "--until", "2999-01-01", "--db", db).stdout.count("\n") == 1
    assert cli("batches", "list", "--since", "1d", "--db", db).stdout == "no batches\n"
    proc = cli("jobs", "list", "--since", "banana", "--db", db, check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "batchdash: error: argument --since: not a time: 'banana' (use an ISO date or time "
        "such as 2026-11-29 or 2026-11-29T08:00, or an age such as 2h or 7d)\n"
    )
    for command in (("jobs", "list"), ("export",), ("batches", "list")):
        proc = cli(*command, "--since", "1h", "--until", "2h", "--db", db, check=False)
        assert proc.returncode == 2
        assert (
            proc.stderr == "batchdash: error: --since is not before --until: nothing could match\n"
        )
    proc = cli("export", "--until", "-3d", "--db", db, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("batchdash: error: argument --until:")


def test_batches_list_state_takes_normalized_states_only(db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    out = cli("batches", "list", "--state", "failed", "--state", "expired", "--db", str(db_path))
    assert out.stdout == "no batches\n"
    proc = cli("batches", "list", "--state", "done", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "batchdash: error: argument --state: 'done' is not one of 'submitting', 'validating', "
        "'running', 'finalizing', 'cancelling', 'succeeded', 'partial', 'failed', 'expired', "
        "'cancelled', 'unknown'.\n"
    )


def _by_status(db: str) -> Counter[str]:
    out = json.loads(cli("jobs", "list", "--json", "--db", db).stdout)
    return Counter(job["status"] for job in out["jobs"])


def test_prune_removes_old_finished_jobs_and_the_dashboard_counts_stay_true(
    tmp_path: Path, any_db: str
) -> None:
    lines = [{"key": f"k{i}", "payload": {"i": i}} for i in range(30)]
    jobs = _write(tmp_path / "jobs.jsonl", lines)
    cli("enqueue", str(jobs), "--handler", "sim", "--max-attempts", "1", "--db", any_db)
    cli("worker", "--sim-failure-rate", "0.3", "--sim-latency", "0", "--idle-exit", "0.2",
        "--poll", "0.02", "--heartbeat", "0.1", "--db", any_db)  # fmt: skip
    finished = json.loads(cli("jobs", "list", "--json", "--db", any_db).stdout)["jobs"]
    last = max(job["finished_at"] for job in finished)
    cli("enqueue", _write(tmp_path / "more.jsonl", [{"key": "new", "payload": {}}]).as_posix(),
        "--handler", "sim", "--db", any_db)  # fmt: skip
    wait_until(lambda: time.time() > last + 0.5, what="the finished jobs to age 0.5 s")

    dry = cli("prune", "--older-than", "0.5s", "--dry-run", "--db", any_db).stdout
    assert dry.startswith("would remove 30 jobs, 90 events, 0 QA verdicts, 0 batch lines, ")
    assert dry.rstrip().endswith("; dry run, nothing removed")
    assert sum(_by_status(any_db).values()) == 31
    done = cli("prune", "--older-than", "0.5s", "--status", "failed", "--db", any_db).stdout
    failed = int(done.split()[1])
    assert done.startswith(f"removed {failed} jobs, {3 * failed} events, ")
    done = cli("prune", "--older-than", "0.5s", "--db", any_db).stdout
    assert done.startswith(f"removed {30 - failed} jobs, {3 * (30 - failed)} events, ")
    picture = json.loads(cli("--once", "--json", "--db", any_db, check=False).stdout)["jobs"]
    fresh = _by_status(any_db)
    assert fresh == {"pending": 1}
    assert picture["total"] == 1 and picture["by_status"]["pending"] == 1
    assert {s: n for s, n in picture["by_status"].items() if n} == dict(fresh)
    assert picture["throughput_per_minute"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--older-than", "banana"), "argument --older-than: not a duration: 'banana'"),
        (("--older-than", "0d"), "argument --older-than: must be a positive duration, got 0d"),
        (("--older-than", "1d", "--status", "running"), "argument --status: 'running' is not"),
        (("--older-than", "1d", "--queue", "nope"), "unknown queue 'nope'"),
    ],
)
def test_bad_prune_input_is_one_line(db_path: Path, args: tuple[str, ...], message: str) -> None:
    cli("init", "--db", str(db_path))
    proc = cli("prune", *args, "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"batchdash: error: {message}")
    assert len(proc.stderr.splitlines()) == 1


def test_submit_tags_the_batch_and_its_jobs(tmp_path: Path, db_path: Path) -> None:
    path = write_requests(tmp_path / "papers.jsonl", [f"p-{i}" for i in range(3)])
    db = ("--db", str(db_path))
    with SimServer(SimConfig(speed=1000)) as sim:
        sim_env = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}
        cli("submit", str(path), "--tag", "nightly", "--tag", "run-3", *db, **sim_env)
        proc = cli("submit", str(path), "--queue", "x", "--tag", "no good", *db, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("batchdash: error: --tag: bad tag")
    shown = cli("batches", "show", "1", *db).stdout
    assert "\ntags nightly run-3\n" in shown
    assert json.loads(cli("batches", "show", "1", "--json", *db).stdout)["tags"] == [
        "nightly",
        "run-3",
    ]
    assert _keys(str(db_path), "--filter", "tag:run-3") == ["p-0", "p-1", "p-2"]
    assert cli("batches", "list", "--state", "submitting", *db).stdout == "no batches\n"
    listed = json.loads(cli("batches", "list", "--json", "--since", "1h", *db).stdout)
    assert [b["id"] for b in listed["batches"]] == [1]
