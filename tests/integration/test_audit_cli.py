"""The command line's actions are in the audit log: `export --events` says who and `via cli`."""

from __future__ import annotations

import json
from pathlib import Path

from batchdash.core.actor import os_user
from tests.conftest import cli


def test_export_events_is_an_audit_log_of_cli_actions(tmp_path: Path) -> None:
    db = str(tmp_path / "audit.db")
    lines = tmp_path / "jobs.jsonl"
    lines.write_text("".join(json.dumps({"key": f"k{i}", "payload": {}}) + "\n" for i in range(2)))
    cli("enqueue", str(lines), "--handler", "noop", "--queue", "q", "--db", db)
    cli("cancel", "1", "--db", db)
    cli("retry", "1", "--db", db)
    cli("queue", "pause", "q", "--db", db)
    cli("resume", "--queue", "q", "--db", db)
    exported = cli("export", "--events", "--db", db).stdout.splitlines()
    actions = [
        (e["kind"], e["job_id"], e["detail"])
        for e in map(json.loads, exported)
        if e["kind"] != "enqueued"
    ]
    by = f"by {os_user()} via cli"
    assert actions == [
        ("cancelled", 1, by),
        ("retried", 1, by),
        ("paused", None, by),
        ("unpaused", None, by),
    ]


def test_workers_stop_records_who_asked(db_path: Path, stop_workers: None) -> None:
    db = str(db_path)
    cli("workers", "start", "--db", db, "--heartbeat", "0.2", "--poll", "0.05")
    listing = json.loads(cli("workers", "list", "--json", "--db", db).stdout)["workers"]
    (worker,) = [w["id"] for w in listing]
    cli("workers", "stop", "--db", db)
    exported = map(json.loads, cli("export", "--events", "--db", db).stdout.splitlines())
    stops = [(e["worker_id"], e["detail"]) for e in exported if e["kind"] == "stop_requested"]
    assert stops == [(worker, f"by {os_user()} via cli")]
