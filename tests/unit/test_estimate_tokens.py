"""The token estimate of a request before it is sent: chars/4 of its text parts plus the
output bound, for every payload shape batchdash runs."""

from __future__ import annotations

import pytest

from batchdash.core.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    estimate_request_tokens,
    request_model,
)

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 40}]}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # A batch-style line: the body's messages, max_tokens.
        ({"url": "/v1/chat/completions", "body": {**CHAT, "max_tokens": 50}}, (10, 50)),
        # max_completion_tokens wins over max_tokens; content parts count their text.
        (
            {
                "model": "o3",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "y" * 9}]}],
                "max_completion_tokens": 7,
                "max_tokens": 99,
            },
            (3, 7),
        ),
        # Anthropic: params with a system prompt.
        ({"params": {**CHAT, "system": "s" * 8, "max_tokens": 32}}, (12, 32)),
        # No bound: the documented default; embeddings produce none.
        (CHAT, (10, DEFAULT_OUTPUT_TOKENS)),
        ({"url": "/v1/embeddings", "body": {"model": "e", "input": ["ab", "cd"]}}, (1, 0)),
        # A plain payload of other fields: all of its text is input.
        ({"text": "hello"}, (5, DEFAULT_OUTPUT_TOKENS)),
        ("not a dict", (1, DEFAULT_OUTPUT_TOKENS)),
    ],
)
def test_estimates(payload: object, expected: tuple[int, int]) -> None:
    assert estimate_request_tokens(payload) == expected


def test_the_model_a_request_names() -> None:
    assert request_model({"url": "/v1/chat/completions", "body": CHAT}) == "gpt-4o-mini"
    assert request_model({"params": {"model": "claude-haiku-4-5"}}) == "claude-haiku-4-5"
    assert request_model({"text": "no model"}) == ""
    assert request_model(["odd"]) == ""
