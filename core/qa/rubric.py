"""What judges are asked: the rubric (instruction and dimensions) and its verdict schema.

A rubric is stored per queue (`queues.qa_rubric`, set by `qa rubric`); queues without one
are judged by the default translation rubric. `overall` is always one of the dimensions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from batchdash.core.db.ports import Tx
from batchdash.core.errors import InvalidInputError

#: Scores are integers in this inclusive range.
MIN_SCORE, MAX_SCORE = 1, 10
#: Longest comment the schema asks for.
MAX_COMMENT_CHARS = 300

_DIMENSION_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

DEFAULT_PROMPT = """\
You review machine translations and similar text-to-text work. Compare the OUTPUT with \
the INPUT it was produced from and score it:
- accuracy: the meaning is preserved; nothing added, dropped or mistranslated.
- fluency: natural, grammatical text in the target language.
- terminology: domain terms rendered correctly and consistently.
- completeness: everything is translated; nothing is cut off or left in the source language.
- overall: your overall judgement of the output's quality (not an average).
10 means flawless, 7 good with minor issues, 4 major problems, 1 unusable. Be strict. \
The comment names the most important problem in one sentence."""

DEFAULT_DIMENSIONS = ("overall", "accuracy", "fluency", "terminology", "completeness")


class RubricError(InvalidInputError):
    """A rubric file or stored rubric that is not usable."""


@dataclass(frozen=True, slots=True)
class Rubric:
    """What judges are asked: an instruction and the dimensions to score (`overall` first)."""

    prompt: str = DEFAULT_PROMPT
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS

    @classmethod
    def from_json(cls, text: str, where: str) -> Rubric:
        """Parse and check `{"prompt": str, "dimensions": [str, ...]}`; `where` names it."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RubricError(f"{where}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RubricError(f"{where}: expected an object with prompt and dimensions")
        unknown = set(data) - {"prompt", "dimensions"}
        if unknown:
            raise RubricError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        prompt = data.get("prompt", DEFAULT_PROMPT)
        if not isinstance(prompt, str) or not prompt.strip():
            raise RubricError(f"{where}: prompt must be a non-empty string")
        names = data.get("dimensions", list(DEFAULT_DIMENSIONS))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RubricError(f"{where}: dimensions must be a list of names")
        for name in names:
            if not _DIMENSION_NAME.fullmatch(name) or name == "comment":
                raise RubricError(
                    f"{where}: bad dimension {name!r} (lower-case letters, digits, _; "
                    "not 'comment')"
                )
        # `overall` is always asked: filters, the worst list and disagreements use it.
        dimensions = tuple(dict.fromkeys(["overall", *names]))
        return cls(prompt=prompt.strip(), dimensions=dimensions)

    def to_json(self) -> str:
        """The rubric as stored in `queues.qa_rubric`."""
        return json.dumps({"prompt": self.prompt, "dimensions": list(self.dimensions)})

    def schema(self) -> dict[str, Any]:
        """The JSON schema of a verdict (strict structured output)."""
        score = {"type": "integer", "minimum": MIN_SCORE, "maximum": MAX_SCORE}
        properties: dict[str, Any] = {name: dict(score) for name in self.dimensions}
        properties["comment"] = {"type": "string", "maxLength": MAX_COMMENT_CHARS}
        return {
            "type": "object",
            "properties": properties,
            "required": [*self.dimensions, "comment"],
            "additionalProperties": False,
        }

    def system_prompt(self) -> str:
        """The instruction plus the scale, so a custom prompt need not repeat it."""
        return (
            f"{self.prompt}\n\nScore each of {', '.join(self.dimensions)} as an integer from "
            f"{MIN_SCORE} (worst) to {MAX_SCORE} (best), and add a short comment."
        )


DEFAULT_RUBRIC = Rubric()


def queue_rubric(tx: Tx, queue: str) -> Rubric:
    """The rubric a queue's jobs are judged by (its own, else the default)."""
    stored = tx.queues.get_qa_rubric(queue)
    if stored is None:
        return DEFAULT_RUBRIC
    return Rubric.from_json(stored, f"rubric of queue {queue!r}")
