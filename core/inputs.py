"""Reading job files (JSONL or CSV) into jobs, all or nothing, with errors by line.

JSONL lines are either batch-style requests — OpenAI's `{"custom_id", "method", "url",
"body"}` or Anthropic's `{"custom_id", "params"}` (the key is the custom_id, the payload is
the line without it) — or `{"key", "payload"}`; any may
carry `priority`, `max_attempts`, `timeout` (seconds per attempt) and `tags` (a list of
tags, added to `enqueue --tag`'s; never part of the payload). A CSV file needs a
`key` column (or `custom_id`); the other columns become the payload, and every row must
have as many fields as the header. Files are UTF-8 (a leading byte-order mark is allowed);
a line that is not valid UTF-8, not valid JSON, or nested too deeply is named by file and
line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdash.core.errors import InvalidInputError
from batchdash.core.models import NewJob
from batchdash.core.tags import TagError, check_tags

#: Line fields that describe the job rather than belong to its payload.
_JOB_FIELDS = frozenset({"custom_id", "priority", "max_attempts", "timeout", "tags"})

#: At most this many problems are listed before the rest are summarised.
MAX_REPORTED_ERRORS = 20

#: Line styles: OpenAI batch requests, Anthropic batch requests, and generic
#: `{key, payload}` lines or CSV rows.
BATCH_STYLE = "batch"
ANTHROPIC_STYLE = "anthropic"
GENERIC_STYLE = "generic"

#: The provider whose batch format each request style is.
STYLE_PROVIDERS = {BATCH_STYLE: "openai", ANTHROPIC_STYLE: "anthropic"}

#: SQLite integers are signed 64-bit.
_INT64 = range(-(2**63), 2**63)

#: Bytes that were not valid UTF-8, as decoded with errors="surrogateescape".
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One bad line of an input file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class InputError(InvalidInputError):
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


@dataclass(frozen=True, slots=True)
class JobFile:
    """The jobs of one file, and which line styles it used (BATCH_STYLE, GENERIC_STYLE)."""

    jobs: list[NewJob]
    styles: frozenset[str]


def read_jobs(
    path: Path, *, priority: int = 0, max_attempts: int = 3, timeout: float | None = None
) -> list[NewJob]:
    """Parse a JSONL or CSV file into jobs; raise InputError listing the bad lines."""
    return read_job_file(path, priority=priority, max_attempts=max_attempts, timeout=timeout).jobs


def read_job_file(
    path: Path,
    *,
    priority: int = 0,
    max_attempts: int = 3,
    timeout: float | None = None,
    tags: tuple[str, ...] = (),
    on_line: Callable[[int], None] | None = None,
) -> JobFile:
    """Parse a JSONL or CSV file into jobs and their styles; InputError lists bad lines.

    `tags` (checked by the caller) go on every job, before a line's own. `on_line(line_no)`
    is called as lines are read (the CLI's progress bar).
    """
    if not path.is_file():
        raise InputError([InputProblem(path, 0, "no such file")], 1)
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    jobs: list[NewJob] = []
    styles: set[str] = set()
    problems: list[InputProblem] = []
    total = 0
    seen: dict[str, int] = {}
    for line_no, parsed in rows:
        if on_line is not None:
            on_line(line_no)
        try:
            if isinstance(parsed, InputProblem):
                raise ValueError(parsed.message)
            job, style = _to_job(parsed, priority, max_attempts, timeout, tags)
            if job.key in seen:
                raise ValueError(f"duplicate key {job.key!r} (first on line {seen[job.key]})")
            seen[job.key] = line_no
            jobs.append(job)
            styles.add(style)
        except ValueError as exc:
            total += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(InputProblem(path, line_no, str(exc)))
    if total:
        raise InputError(problems, total)
    if not jobs:
        raise InputError([InputProblem(path, 0, "no jobs in file")], 1)
    return JobFile(jobs, frozenset(styles))


def _open_text(path: Path) -> Any:
    """UTF-8 with an optional BOM; bad bytes kept as surrogates so each line can be named."""
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _utf8_problem(text: str) -> str | None:
    match = _UNDECODABLE.search(text)
    if match is None:
        return None
    byte = ord(match.group()) - 0xDC00
    return f"invalid UTF-8 (byte 0x{byte:02x} at character {match.start() + 1})"


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            problem = _utf8_problem(line)
            if problem is not None:
                yield line_no, InputProblem(path, line_no, problem)
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, InputProblem(path, line_no, f"invalid JSON: {exc.msg}")
            except RecursionError:
                yield line_no, InputProblem(path, line_no, "JSON nested too deeply")


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        problem = _utf8_problem(",".join(fields))
        if problem is not None:
            yield 1, InputProblem(path, 1, problem)
            return
        if "key" not in fields and "custom_id" not in fields:
            yield 1, InputProblem(path, 1, "CSV needs a 'key' (or 'custom_id') column")
            return
        try:
            for row in reader:
                yield reader.line_num, _csv_row(path, reader.line_num, row, len(fields))
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): stop there
            yield reader.line_num, InputProblem(path, reader.line_num, f"invalid CSV: {exc}")


def _csv_row(path: Path, line_no: int, row: dict[Any, Any], width: int) -> Any:
    """The row as a record, or the problem with it (ragged rows are refused, not padded)."""
    extra = row.get(None)  # DictReader files fields beyond the header under None
    missing = sum(1 for value in row.values() if value is None)
    if extra or missing:
        fields = width + len(extra or ()) - missing
        return InputProblem(path, line_no, f"row has {fields} fields, the header has {width}")
    problem = _utf8_problem(",".join(row.values()))
    if problem is not None:
        return InputProblem(path, line_no, problem)
    return {"csv": row}


def _to_job(
    record: Any, priority: int, max_attempts: int, timeout: float | None, tags: tuple[str, ...]
) -> tuple[NewJob, str]:
    """One parsed line as a job and its style (ValueError says what is wrong with it)."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    style = GENERIC_STYLE
    if "csv" in record and len(record) == 1:
        row = dict(record["csv"])
        key = row.pop("key", None) or row.pop("custom_id", None)
        payload: Any = row
    elif "custom_id" in record:
        key = record["custom_id"]
        payload = {k: v for k, v in record.items() if k not in _JOB_FIELDS}
        style = request_style(payload)
        if style == ANTHROPIC_STYLE and not isinstance(payload["params"], dict):
            raise ValueError("Anthropic-style line: 'params' must be an object")
        if style == BATCH_STYLE and ("url" not in payload or "body" not in payload):
            raise ValueError("batch-style line needs 'url' and 'body' (or Anthropic's 'params')")
    elif "key" in record:
        key = record["key"]
        if "payload" not in record:
            raise ValueError("line needs a 'payload'")
        payload = record["payload"]
    else:
        raise ValueError("line needs 'custom_id' (batch-style) or 'key' and 'payload'")
    if not isinstance(key, str) or not key.strip():
        raise ValueError("key must be a non-empty string")
    job = NewJob(
        key=key,
        payload=payload,
        priority=_int_field(record, "priority", priority),
        max_attempts=max(1, _int_field(record, "max_attempts", max_attempts)),
        timeout=_timeout_field(record, timeout),
        tags=_tags_field(record, tags),
    )
    return job, style


def request_style(line: dict[str, Any]) -> str:
    """ANTHROPIC_STYLE for a `{custom_id, params}` request line, else BATCH_STYLE (OpenAI's
    `{custom_id, method, url, body}`): `params` without OpenAI's url/body decides."""
    if "params" in line and "url" not in line and "body" not in line:
        return ANTHROPIC_STYLE
    return BATCH_STYLE


def _int_field(record: dict[str, Any], name: str, default: int) -> int:
    value = record.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if value not in _INT64:
        raise ValueError(f"{name} {value} is out of range (a signed 64-bit integer)")
    return value


def _tags_field(record: dict[str, Any], tags: tuple[str, ...]) -> tuple[str, ...]:
    """`tags` and the line's own `tags` list (a CSV row's columns are all payload)."""
    if "csv" in record and len(record) == 1:
        return tags
    value = record.get("tags", [])
    if not isinstance(value, list):
        raise ValueError("tags must be a list of strings")
    try:
        return check_tags([*tags, *value])
    except TagError as exc:
        raise ValueError(str(exc)) from None


def _timeout_field(record: dict[str, Any], default: float | None) -> float | None:
    value = record.get("timeout", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError("timeout must be a positive number of seconds")
    return float(value)
