"""Batch policy without network: validation, sharding, states, result-line parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchdash.core import batch_input, batch_results
from batchdash.core.errors import BatchError
from batchdash.core.inputs import MAX_REPORTED_ERRORS, InputError

CHAT = "/v1/chat/completions"


def line(custom_id: str, *, url: str = CHAT, model: str = "gpt-4o-mini", **extra: object) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body, **extra})


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_good_file_gives_endpoint_model_and_one_shard(tmp_path: Path) -> None:
    plan = batch_input.validate_file(write(tmp_path, [line("a"), "", line("b-2_X")]))
    assert (plan.endpoint, plan.model, plan.lines) == (CHAT, "gpt-4o-mini", 2)
    assert [(s.first, s.count) for s in plan.shards] == [(0, 2)]


def test_shards_respect_line_and_byte_limits(tmp_path: Path) -> None:
    path = write(tmp_path, [line(f"id{i}") for i in range(7)])
    by_lines = batch_input.validate_file(path, max_lines=3)
    assert [(s.first, s.count) for s in by_lines.shards] == [(0, 3), (3, 3), (6, 1)]
    size = by_lines.shards[0].size // 3
    by_bytes = batch_input.validate_file(path, max_bytes=size * 2 + 1)
    assert [s.count for s in by_bytes.shards] == [2, 2, 2, 1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{oops", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (line(""), "custom_id '' must be a non-empty string"),
        (json.dumps({"custom_id": 7, "url": CHAT, "body": {}}), "must be a non-empty string"),
        (line("first"), "duplicate custom_id 'first' (first on line 1)"),
        (line("u", url="/v1/embeddings"), "differs from the batch endpoint"),
        (line("m", model="gpt-4o"), "one model per file"),
        (json.dumps({"custom_id": "nb", "url": CHAT}), "body must be a JSON object"),
        (line("g", method="GET"), "method must be POST"),
    ],
)
def test_each_rule_names_the_line(tmp_path: Path, bad: str, message: str) -> None:
    path = write(tmp_path, [line("first"), bad])
    with pytest.raises(InputError) as info:
        batch_input.validate_file(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:2: {message}"] or message in str(
        info.value.problems[0]
    )
    assert info.value.problems[0].line == 2


def test_openai_takes_any_unique_custom_id_and_anthropic_keeps_its_rule(tmp_path: Path) -> None:
    ids = ["lesson-0.field0.english", "a b", "x" * 65, "ünï/cödé:1"]
    plan = batch_input.validate_file(write(tmp_path, [line(i) for i in ids]))
    assert plan.lines == 4
    with pytest.raises(InputError, match="1-64 characters"):
        batch_input.validate_file(
            write(tmp_path, [line("lesson-0.field0.english")]), provider="anthropic"
        )


def test_every_bad_line_is_reported_up_to_a_limit(tmp_path: Path) -> None:
    path = write(tmp_path, ["{bad"] * (MAX_REPORTED_ERRORS + 5))
    with pytest.raises(InputError) as info:
        batch_input.validate_file(path)
    assert len(info.value.problems) == MAX_REPORTED_ERRORS
    assert info.value.lines()[-1] == "... and 5 more problems"


def test_endpoint_option_must_match_and_be_known(tmp_path: Path) -> None:
    path = write(tmp_path, [line("a")])
    with pytest.raises(InputError, match="differs from the batch endpoint /v1/embeddings"):
        batch_input.validate_file(path, endpoint="/v1/embeddings")
    with pytest.raises(BatchError, match="not one of"):
        batch_input.validate_file(path, endpoint="/v2/nope")
    with pytest.raises(InputError, match="no such file"):
        batch_input.validate_file(tmp_path / "missing.jsonl")


def test_metadata_limits() -> None:
    batch_input.check_metadata({f"k{i}": "v" for i in range(16)})
    with pytest.raises(BatchError, match="at most 16"):
        batch_input.check_metadata({f"k{i}": "v" for i in range(17)})
    with pytest.raises(BatchError, match="longer than 512"):
        batch_input.check_metadata({"k": "v" * 513})


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("validating", "validating"),
        ("in_progress", "running"),
        ("finalizing", "finalizing"),
        ("cancelling", "cancelling"),
        ("completed", "finalizing"),  # until the results are in: then succeeded or partial
        ("failed", "failed"),
        ("expired", "expired"),
        ("cancelled", "cancelled"),
        ("queued_at_together", "unknown"),
        (None, "unknown"),
    ],
)
def test_raw_statuses_normalize(raw: str | None, state: str) -> None:
    assert batch_results.normalize_state(raw) == state


def test_final_state_splits_completed() -> None:
    assert batch_results.final_state("completed", "finalizing", {"succeeded": 3}) == "succeeded"
    assert batch_results.final_state("completed", "finalizing", {"succeeded": 3, "missing": 1}) == (
        "partial"
    )
    assert batch_results.final_state("expired", "expired", {"succeeded": 3}) == "expired"


def test_result_lines_map_to_outcomes() -> None:
    prices = batch_results.BatchPrices("gpt-4o-mini")
    body = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000, "completion_tokens": 2000}}
    ok = json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": body}})
    result = batch_results.parse_result_line(ok, prices)
    assert result is not None and result.outcome == "succeeded"
    assert json.loads(str(result.result_json)) == body
    assert (result.input_tokens, result.output_tokens) == (1000, 2000)
    assert result.cost == pytest.approx((1000 * 0.15 + 2000 * 0.60) / 1e6 / 2)
    error_body = {"error": {"code": "server_error", "message": "boom"}}
    bad = json.dumps({"custom_id": "b", "response": {"status_code": 500, "body": error_body}})
    non2xx = batch_results.parse_result_line(bad, prices)
    assert non2xx is not None
    assert (non2xx.outcome, non2xx.status_code, non2xx.error_code) == (
        "non_2xx",
        500,
        "server_error",
    )
    for code, outcome in (
        ("batch_expired", "expired"),
        ("batch_cancelled", "cancelled"),
        ("x", "errored"),
    ):
        text = json.dumps({"custom_id": "c", "response": None, "error": {"code": code}})
        parsed = batch_results.parse_result_line(text, prices)
        assert parsed is not None and parsed.outcome == outcome
    assert batch_results.parse_result_line("not json", prices) is None
    assert batch_results.parse_result_line('{"no": "custom_id"}', prices) is None


def test_body_text_is_kept_when_a_string_contains_the_body_key() -> None:
    prices = batch_results.BatchPrices(None)
    body = {"text": 'he said "body": 1', "n": [1, 2]}
    text = json.dumps({"custom_id": "q", "response": {"body": body, "status_code": 200}})
    result = batch_results.parse_result_line(text, prices)
    assert result is not None and json.loads(str(result.result_json)) == body


def test_request_line_rebuilds_the_input_line() -> None:
    payload = '{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}'
    rebuilt = json.loads(batch_input.request_line("id-1", payload))
    assert rebuilt == {"custom_id": "id-1", **json.loads(payload)}
