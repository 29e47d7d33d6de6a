"""Reading job files (JSONL or CSV) into jobs, all or nothing, with errors by line.

JSONL lines are either batch-style requests `{"custom_id", "method", "url", "body"}`
(the key is the custom_id, the payload is the request) or `{"key", "payload"}`; either may
carry `priority`, `max_attempts` and `timeout` (seconds per attempt). A CSV file needs a
`key` column (or `custom_id`); the other columns become the payload.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models import NewJob

#: Line fields that describe the job rather than belong to its payload.
_JOB_FIELDS = frozenset({"custom_id", "priority", "max_attempts", "timeout"})

#: At most this many problems are listed before the rest are summarised.
MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One bad line of an input file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class InputError(ValueError):
    """The file cannot be enqueued; `problems` lists each bad line (up to a limit)."""

    def __init__(self, problems: list[InputProblem], total: int) -> None:
        self.problems = problems
        self.total = total
        super().__init__(str(problems[0]) if problems else "invalid input")

    def lines(self) -> list[str]:
        """One human-readable line per problem, plus a count of the ones left out."""
        out = [str(p) for p in self.problems]
        if self.total > len(self.problems):
            out.append(f"... and {self.total - len(self.problems)} more problems")
        return out


def read_jobs(
    path: Path, *, priority: int = 0, max_attempts: int = 3, timeout: float | None = None
) -> list[NewJob]:
    """Parse a JSONL or CSV file into jobs; raise InputError listing the bad lines."""
    if not path.is_file():
        raise InputError([InputProblem(path, 0, "no such file")], 1)
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    jobs: list[NewJob] = []
    problems: list[InputProblem] = []
    total = 0
    seen: dict[str, int] = {}
    for line_no, parsed in rows:
        try:
            if isinstance(parsed, InputProblem):
                raise ValueError(parsed.message)
            job = _to_job(parsed, priority, max_attempts, timeout)
            if job.key in seen:
                raise ValueError(f"duplicate key {job.key!r} (first on line {seen[job.key]})")
            seen[job.key] = line_no
            jobs.append(job)
        except ValueError as exc:
            total += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(InputProblem(path, line_no, str(exc)))
    if total:
        raise InputError(problems, total)
    if not jobs:
        raise InputError([InputProblem(path, 0, "no jobs in file")], 1)
    return jobs


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, InputProblem(path, line_no, f"invalid JSON: {exc.msg}")


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "key" not in fields and "custom_id" not in fields:
            yield 1, InputProblem(path, 1, "CSV needs a 'key' (or 'custom_id') column")
            return
        for row in reader:
            yield reader.line_num, {"csv": row}


def _to_job(record: Any, priority: int, max_attempts: int, timeout: float | None) -> NewJob:
    """One parsed line as a job (ValueError says what is wrong with it)."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    if "csv" in record and len(record) == 1:
        row = dict(record["csv"])
        key = row.pop("key", None) or row.pop("custom_id", None)
        payload: Any = row
    elif "custom_id" in record:
        key = record["custom_id"]
        payload = {k: v for k, v in record.items() if k not in _JOB_FIELDS}
        if "url" not in payload or "body" not in payload:
            raise ValueError("batch-style line needs 'url' and 'body'")
    elif "key" in record:
        key = record["key"]
        if "payload" not in record:
            raise ValueError("line needs a 'payload'")
        payload = record["payload"]
    else:
        raise ValueError("line needs 'custom_id' (batch-style) or 'key' and 'payload'")
    if not isinstance(key, str) or not key.strip():
        raise ValueError("key must be a non-empty string")
    return NewJob(
        key=key,
        payload=payload,
        priority=_int_field(record, "priority", priority),
        max_attempts=max(1, _int_field(record, "max_attempts", max_attempts)),
        timeout=_timeout_field(record, timeout),
    )


def _int_field(record: dict[str, Any], name: str, default: int) -> int:
    value = record.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def _timeout_field(record: dict[str, Any], default: float | None) -> float | None:
    value = record.get("timeout", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError("timeout must be a positive number of seconds")
    return float(value)
