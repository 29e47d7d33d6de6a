"""Renderings of entities that several commands share: their JSON shapes and text lines.

Command modules import this one and `common`, never each other.
"""

from __future__ import annotations

from typing import Any

from batchdash.core.models import QAResult
from batchdash.tui.fmt import money, one_line


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
