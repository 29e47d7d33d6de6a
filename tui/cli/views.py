"""Renderings of entities that several commands share: their JSON shapes and text lines.

The JSON contract: every `--json` output is one object with `schema_version` at the top,
indented by 2, each entity under its name (`jobs`, `job`, `workers`, `batches`, `batch`,
`qa`), one shape per entity wherever it appears, and every time in epoch seconds (UTC).
Command modules import this one and `common`, never each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from batchdash.core import snapshot
from batchdash.core.models import Batch, Worker
from batchdash.core.qa_models import QAResult
from batchdash.tui.fmt import money, one_line

#: Bumped when a key is renamed or removed, or its meaning changes (adding one is not).
SCHEMA_VERSION = 1
#: Indentation of every JSON document the CLI prints.
INDENT = 2


def write_json(data: dict[str, Any], out: TextIO | None = None) -> None:
    """Print `data` as a JSON document of the contract (schema_version first)."""
    out = out or sys.stdout
    json.dump({"schema_version": SCHEMA_VERSION, **data}, out, indent=INDENT, ensure_ascii=False)
    out.write("\n")


def write_json_list(name: str, items: Iterable[dict[str, Any]], out: TextIO | None = None) -> None:
    """Like `write_json({name: [...]})`, streamed: a million jobs are never all in memory."""
    out = out or sys.stdout
    pad = " " * (2 * INDENT)
    out.write(f'{{\n  "schema_version": {SCHEMA_VERSION},\n  {json.dumps(name)}: [')
    empty = True
    for item in items:
        text = json.dumps(item, indent=INDENT, ensure_ascii=False)
        out.write("\n" if empty else ",\n")
        out.write("\n".join(pad + line for line in text.splitlines()))
        empty = False
    out.write("]\n}\n" if empty else f"\n{' ' * INDENT}]\n}}\n")


def worker_json(worker: Worker, now: float, host: str) -> dict[str, Any]:
    """A worker, as `workers list --json` and `--once --json` both show it (with health)."""
    health = snapshot.worker_health(worker, now, host)
    return snapshot.WorkerRow(worker, worker.heartbeat_age(now), health).to_dict(now)


def batch_json(batch: Batch, now: float) -> dict[str, Any]:
    """A batch, as `batches list/show --json` and `--once --json` all show it."""
    return snapshot.batch_row(batch, now).to_dict()


def result_to_dict(result: QAResult) -> dict[str, Any]:
    """One verdict as JSON-ready data."""
    return {
        "judge": result.judge,
        "overall": result.overall,
        "scores": result.scores,
        "comment": result.comment,
        "error": result.error,
        "raw": result.raw,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost": result.cost,
        "created_at": result.created_at,
    }


def result_lines(result: QAResult) -> list[str]:
    """One verdict as text: scores (overall first) or the error with the raw reply."""
    tokens = f"{result.input_tokens or 0}+{result.output_tokens or 0} tok, {money(result.cost)}"
    if result.error is not None:
        lines = [f"{result.judge}: ERROR {result.error}  ({tokens})"]
        if result.raw:
            lines.append(f"    raw: {one_line(result.raw, 200)}")
        return lines
    scores = sorted(result.scores.items(), key=lambda item: (item[0] != "overall", item[0]))
    lines = [f"{result.judge}: " + "  ".join(f"{k} {v:g}" for k, v in scores) + f"  ({tokens})"]
    if result.comment:
        lines.append(f"    {one_line(result.comment, 200)}")
    return lines
