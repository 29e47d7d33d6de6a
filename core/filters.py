"""The dashboard's filter language, parsed into a `JobFilter` (and printed back).

    status:failed,cancelled queue:papers key:abc* batch:12 worker:host-1 id:4,5
    provider:anthropic tag:nightly score<7 score>3 "free text" timeout

`provider:NAME` selects the work sent to that provider: the lines of its batches and the
local jobs its handler runs (`provider:openai` = OpenAI batches + `openai` handler jobs).
`tag:NAME` selects the jobs carrying that tag (`enqueue --tag`, `submit --tag`).

Qualifiers may repeat (values are OR-ed within a qualifier, qualifiers AND-ed); anything
that is not a qualifier is free text matched against keys and errors. Quote free text that
contains a colon. A bad qualifier raises `FilterError` with a one-line message.
"""

from __future__ import annotations

import re
import shlex

from batchdash.core.config import PROVIDER_NAMES
from batchdash.core.errors import InvalidInputError
from batchdash.core.models import JobFilter, JobStatus
from batchdash.core.tags import TagError, check_tags

QUALIFIERS = ("status", "queue", "key", "batch", "worker", "id", "provider", "tag")

_TOKEN = re.compile(
    r"""
    \s*(?:
        (?P<score>score)\s*(?P<op>[<>])\s*(?P<num>[^\s"]*)   # score<7, score > 3
      | "(?P<quoted>[^"]*)"?                                # "free text"
      | (?P<word>\S+)                                       # qualifier:value or a word
    )
    """,
    re.VERBOSE,
)


class FilterError(InvalidInputError):
    """A filter the user typed cannot be understood; the message is one line."""


def parse_filter(text: str) -> JobFilter:
    """Parse the filter language into a JobFilter (empty text selects every job)."""
    fields: dict[str, list[str]] = {name: [] for name in QUALIFIERS}
    words: list[str] = []
    below: float | None = None
    above: float | None = None
    for match in _TOKEN.finditer(text):
        if match.group("score"):
            score = _number(match.group("num"), f"score{match.group('op')}")
            if match.group("op") == "<":
                below = score
            else:
                above = score
        elif match.group("quoted") is not None:
            if match.group("quoted"):
                words.append(match.group("quoted"))
        elif match.group("word"):
            word = match.group("word")
            name, sep, value = word.partition(":")
            if not sep or not name:
                words.append(word)
                continue
            if name.lower() not in fields:
                raise FilterError(
                    f"unknown qualifier {name!r} in filter; use {', '.join(QUALIFIERS)}, "
                    f'score<N, score>N, or quote text with a colon ("{word}")'
                )
            if not value:
                raise FilterError(f"{name}: needs a value (e.g. {name}:{_EXAMPLES[name.lower()]})")
            fields[name.lower()].extend(v for v in value.split(",") if v)
    return JobFilter(
        statuses=_statuses(fields["status"]),
        queues=tuple(fields["queue"]),
        ids=tuple(_integer(v, "id") for v in fields["id"]),
        key_glob=_single(fields["key"], "key"),
        batch_id=_optional_int(_single(fields["batch"], "batch"), "batch"),
        worker_id=_single(fields["worker"], "worker"),
        text=" ".join(words) or None,
        score_below=below,
        score_above=above,
        providers=_providers(fields["provider"]),
        tags=_tags(fields["tag"]),
    )


def format_filter(flt: JobFilter) -> str:
    """The filter as text that `parse_filter` turns back into the same JobFilter."""
    parts: list[str] = []
    if flt.statuses:
        parts.append("status:" + ",".join(flt.statuses))
    if flt.queues:
        parts.append("queue:" + ",".join(flt.queues))
    if flt.ids:
        parts.append("id:" + ",".join(map(str, flt.ids)))
    if flt.key_glob:
        parts.append(f"key:{flt.key_glob}")
    if flt.batch_id is not None:
        parts.append(f"batch:{flt.batch_id}")
    if flt.worker_id:
        parts.append(f"worker:{flt.worker_id}")
    if flt.providers:
        parts.append("provider:" + ",".join(flt.providers))
    if flt.tags:
        parts.append("tag:" + ",".join(flt.tags))
    if flt.score_below is not None:
        parts.append(f"score<{flt.score_below:g}")
    if flt.score_above is not None:
        parts.append(f"score>{flt.score_above:g}")
    if flt.text:
        parts.append(f'"{flt.text}"' if ":" in flt.text or " " in flt.text else flt.text)
    return " ".join(parts)


_EXAMPLES = {
    "status": "failed",
    "queue": "papers",
    "key": "abc*",
    "batch": "12",
    "worker": "host-123-ab12",
    "id": "42",
    "provider": "anthropic",
    "tag": "nightly",
}


def _statuses(values: list[str]) -> tuple[str, ...]:
    known = [s.value for s in JobStatus]
    for value in values:
        if value not in known:
            raise FilterError(f"status:{value} is not a job status; use one of {', '.join(known)}")
    return tuple(values)


def _providers(values: list[str]) -> tuple[str, ...]:
    for value in values:
        if value not in PROVIDER_NAMES:
            raise FilterError(
                f"provider:{value} is not a provider; use one of {', '.join(PROVIDER_NAMES)}"
            )
    return tuple(values)


def _tags(values: list[str]) -> tuple[str, ...]:
    try:
        return check_tags(values)
    except TagError as exc:
        raise FilterError(f"tag: {exc}") from None


def _single(values: list[str], name: str) -> str | None:
    if len(values) > 1:
        raise FilterError(f"{name}: takes one value, got {', '.join(map(shlex.quote, values))}")
    return values[0] if values else None


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FilterError(f"{what} needs a number, got {text!r}") from None


def _integer(text: str, what: str) -> int:
    if not text.isdigit():
        raise FilterError(f"{what}:{text} is not a number")
    return int(text)


def _optional_int(text: str | None, what: str) -> int | None:
    return None if text is None else _integer(text, what)
