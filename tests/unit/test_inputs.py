"""Job files: JSONL (batch-style or generic) and CSV, all or nothing, errors by file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchdash.core.inputs import InputError, read_jobs


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_batch_style_lines_use_custom_id_as_key(tmp_path: Path) -> None:
    line = {"custom_id": "p1", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    (job,) = read_jobs(write(tmp_path / "a.jsonl", [json.dumps(line)]))
    assert job.key == "p1"
    assert job.payload == {"method": "POST", "url": "/v1/chat/completions", "body": {}}


def test_generic_lines_carry_priority_and_attempts(tmp_path: Path) -> None:
    line = {"key": "k", "payload": {"x": 1}, "priority": 3, "max_attempts": 5}
    (job,) = read_jobs(write(tmp_path / "a.jsonl", [json.dumps(line)]))
    assert (job.key, job.payload, job.priority, job.max_attempts) == ("k", {"x": 1}, 3, 5)


def test_every_bad_line_is_named_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        ['{"key": "a", "payload": 1}', "{not json", '{"key": "a", "payload": 2}', "[1]", ""],
    )
    with pytest.raises(InputError) as err:
        read_jobs(path)
    lines = err.value.lines()
    assert lines[0].startswith(f"{path}:2: invalid JSON")
    assert lines[1] == f"{path}:3: duplicate key 'a' (first on line 1)"
    assert lines[2] == f"{path}:4: expected a JSON object"
    assert len(lines) == 3


def test_csv_needs_a_key_column(tmp_path: Path) -> None:
    good = tmp_path / "ok.csv"
    good.write_text("key,text\nk1,hello\nk2,world\n")
    assert [(j.key, j.payload) for j in read_jobs(good)] == [
        ("k1", {"text": "hello"}),
        ("k2", {"text": "world"}),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,x\n")
    with pytest.raises(InputError, match="needs a 'key'"):
        read_jobs(bad)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_jobs(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="no jobs"):
        read_jobs(write(tmp_path / "empty.jsonl", [""]))
