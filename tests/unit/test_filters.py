"""The dashboard's filter language: qualifiers, free text, round trips and one-line errors."""

from __future__ import annotations

import pytest

from batchdash.core.filters import FilterError, format_filter, parse_filter
from batchdash.core.models import JobFilter


def test_empty_text_selects_everything() -> None:
    assert parse_filter("   ") == JobFilter()


def test_every_qualifier() -> None:
    flt = parse_filter(
        "status:failed,cancelled queue:papers queue:chat key:abc* batch:12 worker:host-1 "
        'id:4,5 score<7 score > 3 timeout "HTTP 429: rate"'
    )
    assert flt == JobFilter(
        statuses=("failed", "cancelled"),
        queues=("papers", "chat"),
        ids=(4, 5),
        key_glob="abc*",
        batch_id=12,
        worker_id="host-1",
        text="timeout HTTP 429: rate",
        score_below=7.0,
        score_above=3.0,
    )


def test_words_without_colon_are_free_text() -> None:
    assert parse_filter("rate limit") == JobFilter(text="rate limit")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state:failed", "unknown qualifier 'state'"),
        ("status:broken", "status:broken is not a job status"),
        ("batch:abc", "batch:abc is not a number"),
        ("id:1,x", "id:x is not a number"),
        ("score<high", "score< needs a number, got 'high'"),
        ("queue:", "queue: needs a value"),
        ("key:a* key:b*", "key: takes one value"),
    ],
)
def test_bad_qualifiers_give_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message) as info:
        parse_filter(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["status:failed queue:papers key:abc* score<7", 'batch:3 worker:w1 id:9 "a: b"', "plain"],
)
def test_format_round_trips(text: str) -> None:
    flt = parse_filter(text)
    assert parse_filter(format_filter(flt)) == flt


def test_provider_qualifier_round_trips_and_refuses_unknown_providers() -> None:
    flt = parse_filter("provider:anthropic,openai status:failed")
    assert flt == JobFilter(statuses=("failed",), providers=("anthropic", "openai"))
    assert parse_filter(format_filter(flt)) == flt
    with pytest.raises(FilterError, match="provider:gemini is not a provider; use one of"):
        parse_filter("provider:gemini")
