"""The simulator's marker table: how tests and demos trigger each failure mode on purpose.

Three places carry markers:

* **Request text** (the last user message of a chat request, the inputs of an embeddings
  request, the prompt of a completions request). Checked by the real-time endpoints *and*
  by batch processing, so a batch line carrying `SIM_FAIL_500` becomes an output line with
  `status_code` 500, exactly like a real per-request failure inside a batch.
* **custom_id** of a batch input line: per-line result-file quirks.
* **metadata["sim_quirk"]** of a batch: batch-level quirks. Unknown values are ignored.
* **Anthropic text**: the custom_id and the last user message of a Messages request, real
  time or inside a message batch (core/sim/anthropic_messages.py).

`MARKER_TABLE` documents all of them in one place; `core/sim/README.md` mirrors it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

# --- request-text markers -------------------------------------------------------------

FAIL_400: Final = "SIM_FAIL_400"
FAIL_429: Final = "SIM_FAIL_429"
FAIL_500: Final = "SIM_FAIL_500"
FAIL_529: Final = "SIM_FAIL_529"
EXPIRED: Final = "SIM_EXPIRED"
CANCELED: Final = "SIM_CANCELED"
AMBIGUOUS_CREATE: Final = "SIM_AMBIGUOUS_CREATE"
ANTHROPIC_FAILURES: Final = (
    (FAIL_400, 400, "invalid_request_error"),
    (FAIL_429, 429, "rate_limit_error"),
    (FAIL_500, 500, "api_error"),
    (FAIL_529, 529, "overloaded_error"),
)
"""Anthropic side: marker, HTTP status and error type, in precedence order."""
INVALID_JSON: Final = "SIM_INVALID_JSON"
OUT_OF_RANGE: Final = "SIM_OUT_OF_RANGE"
_SLOW_RE: Final = re.compile(r"SIM_SLOW_(\d+)")
MAX_SLOW_MS: Final = 60_000
"""Upper bound of `SIM_SLOW_<ms>`, so a typo cannot hang a test run for hours."""


def failure_status(text: str) -> int | None:
    """HTTP status forced by a `SIM_FAIL_*` marker in `text`, or None.

    When several markers are present the first of 400, 429, 500 in that order wins.
    """
    for marker, status in ((FAIL_400, 400), (FAIL_429, 429), (FAIL_500, 500)):
        if marker in text:
            return status
    return None


def anthropic_failure(text: str) -> tuple[int, str] | None:
    """(status, Anthropic error type) forced by a `SIM_FAIL_*` marker in `text`, or None."""
    for marker, status, error_type in ANTHROPIC_FAILURES:
        if marker in text:
            return status, error_type
    return None


def slow_ms(text: str) -> int:
    """Milliseconds asked for by `SIM_SLOW_<ms>` (0 when absent, capped at MAX_SLOW_MS)."""
    match = _SLOW_RE.search(text)
    return min(int(match.group(1)), MAX_SLOW_MS) if match else 0


# --- custom_id markers ----------------------------------------------------------------


class LineKind(StrEnum):
    """What batch processing does with one input line, from markers in its custom_id."""

    OK = "ok"
    NON2XX = "non2xx"
    """Output line with `status_code` 500, still counted as *completed*."""
    ERRLINE = "errline"
    """Error-file line (`code: server_error`), counted as *failed*."""
    MISSING = "missing"
    """In neither file, yet counted as *completed* (the nasty real-world case)."""


def line_kind(custom_id: str) -> LineKind:
    """Classify a custom_id; precedence when several match: missing > errline > non2xx."""
    for kind in (LineKind.MISSING, LineKind.ERRLINE, LineKind.NON2XX):
        if kind.value in custom_id:
            return kind
    return LineKind.OK


# --- batch-level quirks ---------------------------------------------------------------

QUIRK_KEY: Final = "sim_quirk"


class BatchQuirk(StrEnum):
    """Values of `metadata["sim_quirk"]` the simulator understands."""

    ALL_FAILED = "all_failed"
    EMPTY_ERROR_FILE = "empty_error_file"
    EXPIRE = "expire"
    SLOW_CANCEL = "slow_cancel"
    STALL_FINALIZING = "stall_finalizing"
    AMBIGUOUS_CREATE = "ambiguous_create"
    TOKEN_LIMIT = "token_limit"


def batch_quirk(metadata: dict[str, str] | None) -> BatchQuirk | None:
    """The batch quirk named in metadata, or None (absent or unknown value)."""
    value = (metadata or {}).get(QUIRK_KEY)
    try:
        return BatchQuirk(value) if value is not None else None
    except ValueError:
        return None  # unknown quirks are ignored on purpose: metadata is free-form


MARKER_TABLE: Final[tuple[tuple[str, str, str], ...]] = (
    # (marker, where it goes, effect)
    (
        FAIL_429,
        "request text",
        "429 rate_limit_exceeded, headers retry-after: 0 (+ retry-after-ms)",
    ),
    (FAIL_500, "request text", "500 server_error"),
    (FAIL_400, "request text", "400 invalid_request_error"),
    ("SIM_SLOW_<ms>", "request text", "real-time call sleeps <ms> ms first (ignored in batches)"),
    (INVALID_JSON, "request text + json_schema", "content is not JSON"),
    (OUT_OF_RANGE, "request text + json_schema", "integer/number fields above their maximum"),
    ("non2xx", "custom_id", "output line with status_code 500, counted completed"),
    ("errline", "custom_id", "error-file line, counted failed"),
    ("missing", "custom_id", "absent from both files, counted completed"),
    ("all_failed", "metadata.sim_quirk", "every line errors: completed, output_file_id null"),
    ("empty_error_file", "metadata.sim_quirk", 'no error file gives error_file_id ""'),
    ("expire", "metadata.sim_quirk", "stops halfway, then expired; rest = batch_expired lines"),
    ("slow_cancel", "metadata.sim_quirk", "cancelling lasts slow_cancel_s (30 s) not cancel_s"),
    ("stall_finalizing", "metadata.sim_quirk", "finalizing lasts stall_finalizing_s (600 s)"),
    ("ambiguous_create", "metadata.sim_quirk", "batch is created but create answers 500"),
    ("token_limit", "metadata.sim_quirk", "validation fails with token_limit_exceeded"),
    # Anthropic side (/v1/messages, /v1/messages/batches): text = custom_id + last user message
    (FAIL_400, "Anthropic text", "400 invalid_request_error; in a batch: errored, not retryable"),
    (FAIL_429, "Anthropic text", "429 rate_limit_error; in a batch: errored rate_limit_error"),
    (FAIL_500, "Anthropic text", "500 api_error; in a batch: errored api_error (retryable)"),
    (FAIL_529, "Anthropic text", "529 overloaded_error; in a batch: errored (retryable)"),
    (EXPIRED, "Anthropic batch text", "the request's result is expired"),
    (CANCELED, "Anthropic batch text", "the request's result is canceled"),
    ("SIM_SLOW_<ms>", "Anthropic batch text", "adds <ms> simulated ms to the batch's processing"),
    (AMBIGUOUS_CREATE, "Anthropic custom_id", "the batch is created, but create answers 500"),
)
