"""Tags: short labels on jobs and batches (`enqueue --tag`, `submit --tag`, `tag:x` filters).

A tag is 1-64 characters of letters, digits and `_ . : / @ + = -`, starting with a letter,
digit or `_`: no spaces or commas, so every tag can be written in the filter language
(`tag:a,b` means a or b) and on a command line without quoting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchdash.core.errors import InvalidInputError

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@+=-]{0,63}")

#: What a tag may be, for error messages.
TAG_RULE = "1-64 letters, digits or _.:/@+=- (no spaces or commas), not starting with a symbol"


class TagError(InvalidInputError):
    """A tag that breaks the rule; the message names it in one line."""


def check_tag(text: str) -> str:
    """`text` if it is a valid tag, else TagError naming it."""
    if not isinstance(text, str) or _TAG.fullmatch(text) is None:
        raise TagError(f"bad tag {text!r}: {TAG_RULE}")
    return text


def check_tags(texts: Iterable[str]) -> tuple[str, ...]:
    """Valid tags, each once, in first-seen order (TagError names the first bad one)."""
    return tuple(dict.fromkeys(check_tag(text) for text in texts))
