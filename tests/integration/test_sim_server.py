"""Integration tests of the OpenAI-compatible simulator (core/sim), driven by the real SDK.

Every test talks real HTTP to a `SimServer`; the batch lifecycle runs at high `speed` and
tests wait for states by polling with a deadline, never by fixed sleeps.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Batch
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from batchdash.core.sim.answers import untransform
from batchdash.core.sim.server import SimConfig, SimServer

ROOT = Path(__file__).resolve().parents[2]
CHAT: Final = "/v1/chat/completions"
EMBEDDINGS: Final = "/v1/embeddings"
MODEL = "gpt-4o-mini"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

JsonDict = dict[str, Any]


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """A fast simulator shared by the tests that only need default behaviour."""
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


@pytest.fixture(scope="module")
def client(sim: SimServer) -> OpenAI:
    """SDK client without retries, so every simulated error surfaces."""
    return OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimServer]:
    """Processing slow enough (1000 lines/s wall clock) to cancel a batch mid-flight."""
    with SimServer(SimConfig(speed=100, lines_per_second=10)) as server:
        yield server


def chat_line(custom_id: str, text: str | None = None, **overrides: Any) -> JsonDict:
    """One batch input line for the chat endpoint."""
    body: JsonDict = {
        "model": MODEL,
        "messages": [{"role": "user", "content": text or f"question for {custom_id}"}],
    }
    line: JsonDict = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}
    body.update(overrides.pop("body", {}))
    line.update(overrides)
    return line


def upload(client: OpenAI, lines: list[JsonDict | str]) -> str:
    """Upload JSONL built from dicts (or raw strings, for malformed lines); the file id."""
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    return client.files.create(file=("input.jsonl", text.encode() + b"\n"), purpose="batch").id


def submit(
    client: OpenAI,
    lines: list[JsonDict | str],
    metadata: dict[str, str] | None = None,
    endpoint: Literal["/v1/chat/completions", "/v1/embeddings"] = CHAT,
) -> Batch:
    """Upload and create a batch."""
    return client.batches.create(
        input_file_id=upload(client, lines),
        endpoint=endpoint,
        completion_window="24h",
        metadata=metadata,
    )


def wait_for(
    client: OpenAI, batch_id: str, statuses: frozenset[str] | set[str], timeout: float = 10.0
) -> Batch:
    """Poll until the batch reaches one of `statuses`, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"{batch_id} stuck in {batch.status}"
        time.sleep(0.005)  # poll interval, not a wait for an outcome


def read_jsonl(client: OpenAI, file_id: str | None) -> list[JsonDict]:
    """Download a result file in streaming mode and parse its lines."""
    assert file_id
    with client.files.with_streaming_response.content(file_id) as response:
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def ids_of(records: list[JsonDict]) -> set[str]:
    return {r["custom_id"] for r in records}


# --- happy path ---------------------------------------------------------------------------


def test_upload_create_poll_download_reconciles(client: OpenAI) -> None:
    lines: list[JsonDict | str] = [
        chat_line(f"req-{i}", f"hello world number {i}") for i in range(40)
    ]
    created = submit(client, lines, metadata={"job": "happy", "sim_quirk": "not-a-quirk"})
    assert created.status == "validating"
    assert created.expires_at == created.created_at + 24 * 3600

    batch = wait_for(client, created.id, TERMINAL)

    assert batch.status == "completed"
    assert batch.model == MODEL
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (40, 40)
    assert batch.request_counts.failed == 0
    assert batch.error_file_id is None
    assert batch.metadata == {"job": "happy", "sim_quirk": "not-a-quirk"}
    stamps = [batch.created_at, batch.in_progress_at, batch.finalizing_at, batch.completed_at]
    assert all(s is not None for s in stamps) and stamps == sorted(stamps)  # type: ignore[type-var]
    assert batch.usage is not None and batch.usage.input_tokens > 0
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens

    output = read_jsonl(client, batch.output_file_id)
    assert ids_of(output) == {f"req-{i}" for i in range(40)}
    assert [r["custom_id"] for r in output] != [f"req-{i}" for i in range(40)]  # shuffled
    for record in output:
        assert record["error"] is None and record["id"].startswith("batch_req_")
        assert record["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(record["response"]["body"])
        question = f"hello world number {record['custom_id'].split('-')[1]}"
        assert untransform(completion.choices[0].message.content or "") == question


def test_output_file_is_listed_as_batch_output(client: OpenAI) -> None:
    batch = wait_for(client, submit(client, [chat_line("only")]).id, TERMINAL)
    assert batch.output_file_id is not None
    info = client.files.retrieve(batch.output_file_id)
    assert info.purpose == "batch_output"
    assert info.filename == f"{batch.id}_output.jsonl"
    listed = {f.id for f in client.files.list(purpose="batch_output")}
    assert batch.output_file_id in listed


# --- validation failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "code", "line_no"),
    [
        pytest.param([chat_line("a"), "{not json"], "invalid_json_line", 2, id="invalid-json"),
        pytest.param([chat_line("a"), chat_line("a")], "duplicate_custom_id", 2, id="duplicate"),
        pytest.param(
            [chat_line("a"), chat_line("b", url=EMBEDDINGS)], "mismatched_url", 2, id="url"
        ),
        pytest.param(
            [chat_line("a"), chat_line("b", body={"model": "gpt-4o"})],
            "mismatched_model",
            2,
            id="model",
        ),
    ],
)
def test_validation_failures(
    client: OpenAI, lines: list[JsonDict | str], code: str, line_no: int
) -> None:
    batch = wait_for(client, submit(client, lines).id, TERMINAL)
    assert batch.status == "failed"
    assert batch.failed_at is not None and batch.in_progress_at is None
    assert batch.output_file_id is None and batch.error_file_id is None
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.errors is not None and batch.errors.data
    error = batch.errors.data[0]
    assert (error.code, error.line) == (code, line_no)
    assert error.message


def test_token_limit_quirk_fails_validation(client: OpenAI) -> None:
    created = submit(client, [chat_line("a")], metadata={"sim_quirk": "token_limit"})
    batch = wait_for(client, created.id, TERMINAL)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].code == "token_limit_exceeded"


def test_configured_limits_fail_validation() -> None:
    with SimServer(SimConfig(speed=1000, max_requests=3, token_limit=50)) as server:
        client = OpenAI(base_url=server.base_url, api_key="sim", max_retries=0)
        too_many = submit(client, [chat_line(f"r{i}") for i in range(4)])
        too_big = submit(client, [chat_line("big", "x" * 400)])
        within = submit(client, [chat_line("small", "tiny")])
        codes = {}
        for created in (too_many, too_big, within):
            batch = wait_for(client, created.id, TERMINAL)
            codes[created.id] = (
                batch.errors.data[0].code if batch.errors and batch.errors.data else None
            )
    assert codes == {
        too_many.id: "too_many_requests",
        too_big.id: "token_limit_exceeded",
        within.id: None,
    }


# --- per-line quirks ------------------------------------------------------------------------


def test_per_line_quirks(client: OpenAI) -> None:
    lines: list[JsonDict | str] = [
        chat_line("ok-1"),
        chat_line("ok-2"),
        chat_line("a-non2xx"),
        chat_line("b-errline"),
        chat_line("c-missing"),
        chat_line("d-marker", "please SIM_FAIL_429 now"),
    ]
    batch = wait_for(client, submit(client, lines).id, TERMINAL)

    assert batch.status == "completed"
    assert batch.request_counts is not None
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (6, 5, 1)
    output = {r["custom_id"]: r for r in read_jsonl(client, batch.output_file_id)}
    errors = read_jsonl(client, batch.error_file_id)
    assert set(output) == {"ok-1", "ok-2", "a-non2xx", "d-marker"}
    assert output["a-non2xx"]["response"]["status_code"] == 500
    assert output["d-marker"]["response"]["status_code"] == 429
    assert output["d-marker"]["response"]["body"]["error"]["code"] == "rate_limit_exceeded"
    assert ids_of(errors) == {"b-errline"}
    assert errors[0]["response"] is None and errors[0]["error"]["code"]
    assert "c-missing" not in set(output) | ids_of(errors)


# --- batch-level quirks ---------------------------------------------------------------------


def test_all_failed_completes_without_output_file(client: OpenAI) -> None:
    lines: list[JsonDict | str] = [chat_line(f"r{i}") for i in range(5)]
    batch = wait_for(client, submit(client, lines, {"sim_quirk": "all_failed"}).id, TERMINAL)
    assert batch.status == "completed"
    assert batch.output_file_id is None
    assert batch.request_counts is not None and batch.request_counts.failed == 5
    assert ids_of(read_jsonl(client, batch.error_file_id)) == {f"r{i}" for i in range(5)}


def test_empty_error_file_and_empty_id_requests(sim: SimServer, client: OpenAI) -> None:
    created = submit(client, [chat_line("a")], {"sim_quirk": "empty_error_file"})
    batch = wait_for(client, created.id, TERMINAL)
    assert batch.status == "completed"
    assert batch.error_file_id == ""

    # what a naive client does with error_file_id "": must be a clean OpenAI-style 404
    for path in ("/v1/files//content", "/v1/files/", "/v1/files/%20/content"):
        response = httpx.get(sim.url + path)
        assert response.status_code == 404, path
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_expire_keeps_first_half(client: OpenAI) -> None:
    lines: list[JsonDict | str] = [chat_line(f"r{i}") for i in range(10)]
    batch = wait_for(client, submit(client, lines, {"sim_quirk": "expire"}).id, TERMINAL)
    assert batch.status == "expired"
    assert batch.expired_at is not None and batch.completed_at is None
    assert batch.request_counts is not None and batch.request_counts.completed == 5
    assert ids_of(read_jsonl(client, batch.output_file_id)) == {f"r{i}" for i in range(5)}
    errors = read_jsonl(client, batch.error_file_id)
    assert ids_of(errors) == {f"r{i}" for i in range(5, 10)}
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}


def _cancel_mid_flight(client: OpenAI, metadata: dict[str, str] | None) -> tuple[Batch, float]:
    """Start a 2000-line batch, cancel it once lines complete; final batch and cancel time."""
    created = submit(client, [chat_line(f"r{i}") for i in range(2000)], metadata)
    deadline = time.monotonic() + 10
    while (batch := client.batches.retrieve(created.id)).request_counts.completed == 0:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.002)
    assert batch.status == "in_progress"
    started = time.monotonic()
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    final = wait_for(client, created.id, TERMINAL)
    return final, time.monotonic() - started


def test_cancel_keeps_partial_output(slow_sim: SimServer) -> None:
    client = OpenAI(base_url=slow_sim.base_url, api_key="sim", max_retries=0)
    batch, _ = _cancel_mid_flight(client, None)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert batch.request_counts is not None
    done = batch.request_counts.completed
    assert 0 < done < 2000
    output = read_jsonl(client, batch.output_file_id)
    errors = read_jsonl(client, batch.error_file_id)
    assert len(output) == done
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert ids_of(output) | ids_of(errors) == {f"r{i}" for i in range(2000)}
    assert client.batches.cancel(batch.id).status == "cancelled"  # repeat cancel is harmless


def test_slow_cancel_takes_longer(slow_sim: SimServer) -> None:
    client = OpenAI(base_url=slow_sim.base_url, api_key="sim", max_retries=0)
    normal, normal_s = _cancel_mid_flight(client, None)
    slow, slow_s = _cancel_mid_flight(client, {"sim_quirk": "slow_cancel"})
    assert normal.status == slow.status == "cancelled"
    # slow_cancel_s / speed = 0.3 s of cancelling against cancel_s / speed = 0.01 s
    assert slow_s >= 0.3
    assert normal_s < 0.15


def test_stall_finalizing(client: OpenAI) -> None:
    submitted = time.monotonic()
    created = submit(client, [chat_line("a")], {"sim_quirk": "stall_finalizing"})
    finalizing = wait_for(client, created.id, {"finalizing"} | TERMINAL)
    assert finalizing.status == "finalizing" and finalizing.finalizing_at is not None
    done = wait_for(client, created.id, TERMINAL)
    assert done.status == "completed"
    assert time.monotonic() - submitted >= 0.6  # stall_finalizing_s 600 / speed 1000


def test_ambiguous_create_needs_reconciling(client: OpenAI) -> None:
    file_id = upload(client, [chat_line("a")])
    tag = {"sim_quirk": "ambiguous_create", "client_ref": "ambiguous-1"}
    with pytest.raises(openai.InternalServerError):
        client.batches.create(
            input_file_id=file_id,
            endpoint=CHAT,
            completion_window="24h",
            metadata=tag,
        )
    matches = [b for b in client.batches.list(limit=100) if b.metadata == tag]
    assert len(matches) == 1
    assert wait_for(client, matches[0].id, TERMINAL).status == "completed"


# --- listing --------------------------------------------------------------------------------


def test_list_pagination_newest_first() -> None:
    with SimServer(SimConfig(speed=1000)) as server:
        client = OpenAI(base_url=server.base_url, api_key="sim", max_retries=0)
        file_id = upload(client, [chat_line("a")])
        ids = [
            client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id
            for _ in range(5)
        ]
        newest_first = ids[::-1]

        first = client.batches.list(limit=2)
        assert [b.id for b in first.data] == newest_first[:2]
        assert first.has_more is True
        second = client.batches.list(limit=2, after=first.data[-1].id)
        assert [b.id for b in second.data] == newest_first[2:4]
        third = client.batches.list(limit=2, after=second.data[-1].id)
        assert [b.id for b in third.data] == newest_first[4:]
        assert third.has_more is False
        assert [b.id for b in client.batches.list(limit=2)] == newest_first  # auto-paging
        raw = httpx.get(server.url + "/v1/batches", params={"limit": 3}).json()
        assert raw["first_id"] == newest_first[0] and raw["last_id"] == newest_first[2]
        for bad in (0, 101):
            with pytest.raises(openai.BadRequestError):
                client.batches.list(limit=bad)


# --- random faults --------------------------------------------------------------------------


def _fault_statuses(seed: int) -> list[int]:
    with SimServer(SimConfig(fault_rate=0.3, seed=seed)) as server, httpx.Client() as http:
        return [http.get(server.url + "/v1/models").status_code for _ in range(40)]


def test_faults_are_seeded_and_reproducible() -> None:
    statuses = _fault_statuses(7)
    assert statuses == _fault_statuses(7)
    assert 429 in statuses and ({500, 503} & set(statuses))
    assert 20 <= statuses.count(200) < 40


def test_faults_sdk_retries_succeed_without_side_effects() -> None:
    with SimServer(SimConfig(speed=1000, fault_rate=0.3, seed=3)) as server:
        client = OpenAI(base_url=server.base_url, api_key="sim", max_retries=20)
        file_id = upload(client, [chat_line(f"r{i}") for i in range(5)])
        params = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
        with httpx.Client() as http:
            answers = [http.post(server.url + "/v1/batches", json=params) for _ in range(20)]
        statuses = [a.status_code for a in answers]
        assert 429 in statuses and {500, 503} & set(statuses)
        assert all(a.headers["retry-after"] == "0" for a in answers if a.status_code == 429)
        created = [a.json()["id"] for a in answers if a.status_code == 200]
        # a faulted create must not have created anything
        assert sorted(b.id for b in client.batches.list(limit=100)) == sorted(created)

        batch = wait_for(client, created[0], TERMINAL)
        assert batch.status == "completed"
        assert ids_of(read_jsonl(client, batch.output_file_id)) == {f"r{i}" for i in range(5)}


# --- real-time endpoints --------------------------------------------------------------------


SCHEMA: JsonDict = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 3, "maximum": 7},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "label": {"type": "string", "enum": ["good", "bad"]},
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "inner": {"type": "object", "properties": {"flag": {"type": "boolean"}}},
    },
    "required": ["count", "score", "label", "name", "tags", "inner"],
    "additionalProperties": False,
}


def _schema_chat(client: OpenAI, text: str) -> str:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": text}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
        },
    )
    return response.choices[0].message.content or ""


def test_json_schema_answer_respects_schema(client: OpenAI) -> None:
    for text in ("rate this", "and this one", "a third input"):
        content = _schema_chat(client, text)
        assert content == _schema_chat(client, text)  # deterministic
        value = json.loads(content)
        assert set(value) == set(SCHEMA["properties"])
        assert isinstance(value["count"], int) and 3 <= value["count"] <= 7
        assert 0 <= value["score"] <= 1
        assert value["label"] in ("good", "bad")
        assert isinstance(value["name"], str) and len(value["name"]) < 20
        assert all(isinstance(t, str) for t in value["tags"])
        assert isinstance(value["inner"]["flag"], bool)


class Rating(BaseModel):
    """A structured-output model as the SDK's parse() helper sends it ($defs, strict)."""

    class Detail(BaseModel):
        stars: int = Field(ge=1, le=5)

    verdict: str
    detail: Detail


def test_sdk_parse_helper_gets_valid_objects(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "judge"}], response_format=Rating
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None and 1 <= parsed.detail.stars <= 5


def test_invalid_json_and_out_of_range_markers(client: OpenAI) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(_schema_chat(client, "give me SIM_INVALID_JSON please"))
    value = json.loads(_schema_chat(client, "SIM_OUT_OF_RANGE"))
    assert value["count"] > 7
    assert value["label"] in ("good", "bad")


def test_failure_and_slow_markers(client: OpenAI) -> None:
    def ask(text: str) -> None:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])

    with pytest.raises(openai.RateLimitError) as limited:
        ask("SIM_FAIL_429")
    assert limited.value.response.headers["retry-after"] == "0"
    with pytest.raises(openai.InternalServerError):
        ask("x SIM_FAIL_500 y")
    with pytest.raises(openai.BadRequestError) as bad:
        ask("SIM_FAIL_400")
    assert bad.value.code is None and bad.value.type == "invalid_request_error"
    started = time.monotonic()
    ask("wait SIM_SLOW_150 ms")
    assert time.monotonic() - started >= 0.15


def test_chat_answer_size_and_usage_scale_with_input(client: OpenAI) -> None:
    text = " ".join(f"word{i}" for i in range(300))[:2048]
    response = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    )
    content = response.choices[0].message.content or ""
    assert len(text) <= len(content) <= len(text) + 10
    assert untransform(content) == text
    assert response.usage is not None
    assert response.usage.prompt_tokens == len(text) // 4
    assert response.usage.completion_tokens >= len(text) // 4


def test_embeddings_are_deterministic(sim: SimServer, client: OpenAI) -> None:
    first = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    again = client.embeddings.create(model="text-embedding-3-small", input="alpha")
    assert len(first.data) == 2 and len(first.data[0].embedding) == 8
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert first.data[0].embedding != first.data[1].embedding
    assert first.usage.prompt_tokens >= 2
    raw = httpx.post(
        sim.url + "/v1/embeddings",
        json={"model": "m", "input": "alpha", "encoding_format": "float", "dimensions": 4},
    ).json()
    assert len(raw["data"][0]["embedding"]) == 4


def test_embeddings_batch(client: OpenAI) -> None:
    line = {
        "custom_id": "e1",
        "method": "POST",
        "url": EMBEDDINGS,
        "body": {"model": "text-embedding-3-small", "input": "alpha"},
    }
    batch = wait_for(client, submit(client, [line], endpoint=EMBEDDINGS).id, TERMINAL)
    [record] = read_jsonl(client, batch.output_file_id)
    assert record["response"]["body"]["object"] == "list"
    assert len(record["response"]["body"]["data"][0]["embedding"]) == 8


# --- files and request errors ---------------------------------------------------------------


def test_files_crud_and_streamed_download(client: OpenAI) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    created = client.files.create(file=("blob.bin", payload), purpose="user_data")
    assert created.bytes == len(payload)
    assert client.files.retrieve(created.id).filename == "blob.bin"
    with client.files.with_streaming_response.content(created.id) as response:
        assert b"".join(response.iter_bytes()) == payload
    assert created.id in {f.id for f in client.files.list()}
    assert client.files.delete(created.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-doesnotexist")


@pytest.mark.parametrize(
    "overrides",
    [
        {"completion_window": "48h"},
        {"endpoint": "/v1/nope"},
        {"input_file_id": "file-unknown"},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 513}},
    ],
    ids=["window", "endpoint", "file", "17-pairs", "long-key", "long-value"],
)
def test_create_rejects_bad_parameters(client: OpenAI, overrides: JsonDict) -> None:
    params: JsonDict = {
        "input_file_id": upload(client, [chat_line("a")]),
        "endpoint": CHAT,
        "completion_window": "24h",
        "metadata": {"k": "v" * 512},  # at the limit: accepted
        **overrides,
    }
    with pytest.raises(openai.BadRequestError):
        client.batches.create(**params)


def test_unknown_batch_and_terminal_cancel(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_unknown")
    batch = wait_for(client, submit(client, [chat_line("a")]).id, TERMINAL)
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


# --- command line ---------------------------------------------------------------------------


def test_module_cli_prints_url_and_serves() -> None:
    env = dict(os.environ)
    command = [
        sys.executable,
        "-m",
        "batchdash.core.sim",
        "--port",
        "0",
        "--speed",
        "50",
        "--seed",
        "1",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=20), "no URL printed"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = OpenAI(base_url=url + "/v1", api_key="sim", max_retries=0)
        assert [m.id for m in client.models.list()]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""  # the URL is the only line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
