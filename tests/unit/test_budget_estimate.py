"""The token estimate before a request is sent: a quarter of its text parts' characters,
the output bound from its cap (or the documented default), whatever the request style."""

from __future__ import annotations

from batchdash.core.cost_estimate import estimate_payloads, over_limit
from batchdash.core.estimate import DEFAULT_OUTPUT_BOUND, estimate_request_tokens


def test_openai_chat_counts_message_text_and_its_cap() -> None:
    payload = {
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "max_completion_tokens": 64,
            "messages": [
                {"role": "system", "content": "a" * 40},
                {"role": "user", "content": [{"type": "text", "text": "b" * 80}]},
            ],
        },
    }
    assert estimate_request_tokens(payload) == (30, 64)


def test_anthropic_params_system_and_max_tokens() -> None:
    params = {"model": "claude-haiku-4-5", "max_tokens": 500, "system": "s" * 20}
    params["messages"] = [{"role": "user", "content": "u" * 20}]
    assert estimate_request_tokens({"params": params}) == (10, 500)


def test_without_a_cap_the_default_bound_and_embeddings_none() -> None:
    chat = {"url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}
    assert estimate_request_tokens(chat) == (1, DEFAULT_OUTPUT_BOUND)
    embed = {"url": "/v1/embeddings", "body": {"model": "e", "input": ["x" * 400, "y" * 400]}}
    assert estimate_request_tokens(embed) == (200, 0)


def test_a_generic_payload_counts_its_whole_json() -> None:
    assert estimate_request_tokens({"text": "z" * 100}) == (28, DEFAULT_OUTPUT_BOUND)


def test_the_range_and_the_limit() -> None:
    body = {"model": "gpt-4o", "max_tokens": 1000, "messages": [{"content": "q" * 4000}]}
    estimate = estimate_payloads([{"body": body}] * 10, batch=False)
    (row,) = estimate.models
    assert (row.requests, row.input_tokens, row.output_bound) == (10, 10_000, 10_000)
    assert (row.min_usd, row.max_usd) == (0.025, 0.125)
    assert over_limit(estimate, 0.2) is None
    assert over_limit(estimate, 0.1) == "upper estimate $0.1250 exceeds the limit $0.1000"
