"""The CLI on bad paths, bad files and bad options: one line, exit 2, nothing created.

Every test runs `batchdash` as a real process on a real SQLite file.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchdash.core.db import open_sync_store
from batchdash.core.models import Job, JobFilter
from tests.conftest import ROOT, cli, cli_env, wait_until

#: Every command that reads or changes existing data, and the dashboard itself.
READ_COMMANDS = [
    ("jobs", "list"),
    ("jobs", "show", "1"),
    ("retry", "1"),
    ("cancel", "1"),
    ("resume",),
    ("queue", "pause", "papers"),
    ("queue", "resume", "papers"),
    ("export",),
    ("export", "--events"),
    ("--once",),
    ("--once", "--json"),
    ("--once", "--poll"),
    ("--read-only",),  # the dashboard: refused before it opens
    (),  # the dashboard, writable
    ("batches", "list"),
    ("batches", "show", "1"),
    ("qa", "summary"),
    ("qa", "show", "1"),
    ("workers", "list"),
    ("workers", "stop"),
    ("poll", "--until-done"),
]


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a refused command (exit 2, nothing on stdout)."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("batchdash"), proc.stderr
    return lines[0]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def generic(n: int, prefix: str = "k") -> list[object]:
    return [{"key": f"{prefix}{i}", "payload": {"i": i}} for i in range(n)]


def jobs_in(db: Path) -> list[Job]:
    with open_sync_store(db, create=False) as s:
        return s.tx.jobs.list_jobs()


# --------------------------------------------------------------------------- no database


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c) or "dashboard")
def test_read_commands_refuse_a_missing_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "typo" / "batchdash.db"
    proc = cli(*command, "--db", str(path), check=False, timeout=20)
    assert one_error(proc) == (
        f"batchdash: error: no database at {path} — run `batchdash init` or `batchdash demo`"
    )
    assert not path.parent.exists()


def test_init_and_enqueue_create_the_database(tmp_path: Path) -> None:
    created = tmp_path / "new" / "a.db"
    cli("init", "--db", str(created))
    assert created.exists()
    other = tmp_path / "other" / "b.db"
    jobs = write_lines(tmp_path / "j.jsonl", generic(2))
    cli("enqueue", str(jobs), "--handler", "sim", "--db", str(other))
    assert len(jobs_in(other)) == 2


# --------------------------------------------------------------------------- bad database


@pytest.mark.parametrize(
    "command",
    [
        ("jobs", "list"),
        ("init",),
        ("enqueue", "JOBS", "--handler", "sim"),
        ("--once",),
        ("retry", "1"),
        ("workers", "list"),
        ("batches", "list"),
    ],
    ids=" ".join,
)
def test_a_file_that_is_not_a_database_is_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite\n" * 300)
    jobs = str(write_lines(tmp_path / "j.jsonl", generic(1)))
    args = [jobs if word == "JOBS" else word for word in command]
    proc = cli(*args, "--db", str(junk), check=False)
    assert one_error(proc) == f"batchdash: error: database {junk}: file is not a database"
    assert junk.read_bytes() == b"this is not sqlite\n" * 300


def test_out_of_range_priority_and_deep_nesting_are_refused(tmp_path: Path, db_path: Path) -> None:
    jobs = write_lines(tmp_path / "j.jsonl", generic(1))
    proc = cli("enqueue", str(jobs), "--handler", "sim", "--priority", str(10**30),
               "--db", str(db_path), check=False)  # fmt: skip
    assert proc.returncode == 2 and "argument --priority" in proc.stderr
    assert "Traceback" not in proc.stderr
    big = write_lines(tmp_path / "big.jsonl", [{"key": "a", "payload": 1, "priority": 10**30}])
    proc = cli("enqueue", str(big), "--handler", "sim", "--db", str(db_path), check=False)
    assert proc.returncode == 2 and f"{big}:1: priority {10**30} is out of range" in proc.stderr
    deep = tmp_path / "deep.jsonl"
    deep.write_text(
        json.dumps({"key": "ok", "payload": 1}) + "\n"
        '{"key": "deep", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    proc = cli("enqueue", str(deep), "--handler", "sim", "--db", str(db_path), check=False)
    assert proc.returncode == 2 and f"{deep}:2: JSON nested too deeply" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not db_path.exists()


# --------------------------------------------------------------------------- config


def test_a_malformed_config_file_is_an_error_even_with_db(tmp_path: Path, db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    bad = tmp_path / "config.toml"
    bad.write_text('db = "x"\nthis is not toml\n')
    proc = cli("jobs", "list", "--db", str(db_path), check=False, BATCHDASH_CONFIG=str(bad))
    line = one_error(proc)
    assert line.startswith(f"batchdash: error: config file {bad}: ") and "line 2" in line


def test_a_malformed_price_file_is_one_error(tmp_path: Path, db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    prices = tmp_path / "prices.json"
    prices.write_text("{not json")
    for command in (("jobs", "list"), ("poll", "--until-done"), ("--once",)):
        proc = cli(*command, "--db", str(db_path), check=False, BATCHDASH_PRICES=str(prices))
        assert one_error(proc).startswith(f"batchdash: error: BATCHDASH_PRICES={prices}: ")


# --------------------------------------------------------------------------- input files


def test_invalid_utf8_names_the_file_and_line(tmp_path: Path, db_path: Path) -> None:
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"key": "a", "payload": "ok"}\n{"key": "b", "payload": "caf\xe9"}\n')
    proc = cli("enqueue", str(bad), "--handler", "sim", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert f"{bad}:2: invalid UTF-8 (byte 0xe9" in proc.stderr
    bad_csv = tmp_path / "latin1.csv"
    bad_csv.write_bytes(b"key,text\na,ok\nb,caf\xe9\n")
    proc = cli("enqueue", str(bad_csv), "--handler", "sim", "--db", str(db_path), check=False)
    assert proc.returncode == 2 and f"{bad_csv}:3: invalid UTF-8" in proc.stderr
    assert not db_path.exists()


def test_csv_with_a_byte_order_mark_is_accepted(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("key,text\r\nk1,héllo\r\nk2,world\r\n".encode("utf-8-sig"))
    cli("enqueue", str(path), "--handler", "sim", "--db", str(db_path))
    assert [(j.key, j.payload) for j in jobs_in(db_path)] == [
        ("k1", {"text": "héllo"}),
        ("k2", {"text": "world"}),
    ]


def test_ragged_csv_rows_are_refused_by_line(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerows([["key", "a", "b"], ["k1", "1", "2"], ["k2", "1"], ["k3", "1", "2", "3"]])
    proc = cli("enqueue", str(path), "--handler", "sim", "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert f"{path}:3: row has 2 fields, the header has 3" in proc.stderr
    assert f"{path}:4: row has 4 fields, the header has 3" in proc.stderr
    assert not db_path.exists()


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (("jobs", "list", "--limit", "-1"), "--limit"),
        (("jobs", "list", "--limit", "0"), "--limit"),
        (("jobs", "list", "--queue", ""), "--queue"),
        (("retry", "--queue", " "), "--queue"),
        (("cancel", "--queue", ""), "--queue"),
        (("export", "--queue", ""), "--queue"),
        (("enqueue", "JOBS", "--handler", "sim", "--queue", ""), "--queue"),
        (("enqueue", "JOBS", "--handler", "sim", "--max-attempts", "0"), "--max-attempts"),
        (("enqueue", "JOBS", "--handler", ""), "--handler"),
        (("queue", "pause", ""), "name"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v,
)
def test_harmful_options_are_refused_at_parse_time(
    tmp_path: Path, db_path: Path, command: tuple[str, ...], option: str
) -> None:
    cli("init", "--db", str(db_path))
    jobs = str(write_lines(tmp_path / "j.jsonl", generic(1)))
    args = [jobs if word == "JOBS" else word for word in command]
    proc = cli(*args, "--db", str(db_path), check=False)
    assert proc.returncode == 2
    assert f"error: argument {option}" in proc.stderr
    assert jobs_in(db_path) == []


# --------------------------------------------------------------------------- handlers


def batch_line(custom_id: str) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": []}}  # fmt: skip


def test_batch_style_lines_default_to_openai_never_sim(tmp_path: Path, db_path: Path) -> None:
    path = write_lines(tmp_path / "batch.jsonl", [batch_line("p1"), batch_line("p2")])
    out = cli("enqueue", str(path), "--db", str(db_path)).stdout
    assert out == "enqueued 2 jobs into 'default' with handler openai\n"
    listing = cli("jobs", "list", "--db", str(db_path)).stdout.splitlines()
    assert listing[0].split()[:5] == ["ID", "KEY", "QUEUE", "HANDLER", "STATUS"]
    assert all(row.split()[3] == "openai" for row in listing[1:3])
    shown = json.loads(cli("jobs", "show", "1", "--json", "--db", str(db_path)).stdout)
    assert shown["job"]["handler"] == "openai"
    assert "handler openai" in cli("jobs", "show", "1", "--db", str(db_path)).stdout


def test_generic_lines_without_handler_are_refused(tmp_path: Path, db_path: Path) -> None:
    path = write_lines(tmp_path / "generic.jsonl", generic(3))
    proc = cli("enqueue", str(path), "--db", str(db_path), check=False)
    assert one_error(proc) == (
        f"batchdash: error: {path}: {{key, payload}} lines, CSV rows and mixed files need "
        "--handler (openai, anthropic, sim for simulated results, noop, or module:function)"
    )
    assert not db_path.exists()
    mixed = write_lines(tmp_path / "mixed.jsonl", [batch_line("p1"), *generic(1)])
    assert cli("enqueue", str(mixed), "--db", str(db_path), check=False).returncode == 2


# --------------------------------------------------------------------------- listing, export


def test_jobs_list_is_newest_first_like_the_dashboard(tmp_path: Path, db_path: Path) -> None:
    cli("enqueue", str(write_lines(tmp_path / "j.jsonl", generic(5))), "--handler", "sim",
        "--db", str(db_path))  # fmt: skip
    newest = json.loads(cli("jobs", "list", "--limit", "2", "--json", "--db", str(db_path)).stdout)
    assert [j["key"] for j in newest["jobs"]] == ["k4", "k3"]
    oldest = cli("jobs", "list", "--limit", "2", "--order", "oldest", "--json",
                 "--db", str(db_path)).stdout  # fmt: skip
    assert [j["key"] for j in json.loads(oldest)["jobs"]] == ["k0", "k1"]
    assert "--order" in cli("jobs", "list", "--help").stdout


def test_export_events_include_the_queue_of_queue_events(tmp_path: Path, db_path: Path) -> None:
    cli("enqueue", str(write_lines(tmp_path / "j.jsonl", generic(1))), "--handler", "sim",
        "--queue", "papers", "--db", str(db_path))  # fmt: skip
    cli("queue", "pause", "papers", "--db", str(db_path))
    cli("queue", "resume", "papers", "--db", str(db_path))
    events = [
        json.loads(line)
        for line in cli("export", "--events", "--db", str(db_path)).stdout.splitlines()
    ]
    queue_events = [(e["kind"], e["queue"]) for e in events if e["job_id"] is None]
    assert len(queue_events) == 2 and {q for _, q in queue_events} == {"papers"}
    assert events[0]["queue"] == "papers"  # the job's own events carry it too
    out = tmp_path / "events.csv"
    cli("export", "--events", "--format", "csv", "-o", str(out), "--db", str(db_path))
    assert out.read_text().splitlines()[0] == "id,at,kind,job_id,batch_id,queue,worker_id,detail"


# --------------------------------------------------------------------------- Ctrl-C


def _open_files(pid: int) -> set[str]:
    try:
        return {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return set()


def _enqueue_process(jobs: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchdash",
            "enqueue",
            str(jobs),
            "--handler",
            "sim",
            "--queue",
            "papers",
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=ROOT,
    )


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_ctrl_c_while_reading_enqueues_nothing(tmp_path: Path, db_path: Path) -> None:
    jobs = write_lines(tmp_path / "big.jsonl", generic(300_000))
    proc = _enqueue_process(jobs, db_path)
    wait_until(lambda: str(jobs) in _open_files(proc.pid), 20, 0.005, what="reading the file")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err == "interrupted: nothing enqueued\n" and out == ""
    assert not db_path.exists() or jobs_in(db_path) == []


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_ctrl_c_while_writing_says_exactly_what_was_committed(
    tmp_path: Path, db_path: Path
) -> None:
    cli("init", "--db", str(db_path))
    jobs = write_lines(tmp_path / "big.jsonl", generic(100_000))
    proc = _enqueue_process(jobs, db_path)
    wait_until(
        lambda: str(jobs) not in _open_files(proc.pid) and str(db_path) in _open_files(proc.pid),
        30,
        0.002,
        what="the write phase",
    )
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    with open_sync_store(db_path, create=False) as s:
        count = s.tx.jobs.count_jobs(JobFilter(queues=("papers",)))
    # Either outcome may win the race; what is printed must match what is in the file.
    if count:
        assert err == (
            f"interrupted: {count} jobs were enqueued into 'papers' before the interrupt\n"
        )
    else:
        assert err == "interrupted: nothing enqueued\n"


# --------------------------------------------------------------------------- full disk


def test_a_full_disk_during_enqueue_reports_the_real_error(tmp_path: Path, db_path: Path) -> None:
    cli("init", "--db", str(db_path))
    jobs = write_lines(
        tmp_path / "big.jsonl", [{"key": f"k{i}", "payload": "x" * 500} for i in range(20_000)]
    )

    def small_disk() -> None:
        # Files may not grow past 2 MB: writes beyond fail as on a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    proc = subprocess.run(
        [sys.executable, "-m", "batchdash", "enqueue", str(jobs), "--handler", "sim",
         "--db", str(db_path)],
        capture_output=True, text=True, env=cli_env(), cwd=ROOT, preexec_fn=small_disk,
        timeout=60,
    )  # fmt: skip
    line = one_error(proc)
    assert line.startswith(f"batchdash: error: database {db_path}: ")
    assert "cannot rollback" not in line
    assert jobs_in(db_path) == []
