"""Integration tests of the simulator's Anthropic side, driven by the real `anthropic` SDK.

Every test talks real HTTP to a `SimServer`: `POST /v1/messages` and the Message Batches
endpoints. Batches run at high `speed`; tests wait for states with a deadline.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic import Anthropic
from anthropic.types import Message
from anthropic.types.messages import MessageBatch

from batchdash.core.sim.answers import untransform
from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import wait_until

MODEL = "claude-sim-1"
JsonDict = dict[str, Any]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """A fast simulator shared by the tests that only need default behaviour."""
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


@pytest.fixture(scope="module")
def client(sim: SimServer) -> Anthropic:
    """SDK client without retries, so every simulated error surfaces."""
    return Anthropic(base_url=sim.url, api_key="sim", max_retries=0)


def _params(text: str, max_tokens: int = 200) -> JsonDict:
    return {
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }


def _request(custom_id: str, text: str = "hello there") -> JsonDict:
    return {"custom_id": custom_id, "params": _params(text)}


def _ended(client: Anthropic, batch_id: str) -> MessageBatch:
    """Poll until the batch has ended (deadline 30 s); the ended batch."""
    seen: list[MessageBatch] = []

    def ended() -> bool:
        seen.append(client.messages.batches.retrieve(batch_id))
        return seen[-1].processing_status == "ended"

    wait_until(ended, what=f"batch {batch_id} to end")
    return seen[-1]


def _results(client: Anthropic, batch_id: str) -> list[Any]:
    return list(client.messages.batches.results(batch_id))


# --- messages -------------------------------------------------------------------------------


def test_messages_create_answers_deterministically_with_usage(client: Anthropic) -> None:
    """The answer is the chat route's transform of the question, with usage and stop_reason."""
    question = "how many legs does a spider have"
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=200,
        system="be brief",
        messages=[{"role": "user", "content": question}],
    )
    message = raw.parse()
    assert raw.headers["request-id"]
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    text = message.content[0].text  # type: ignore[union-attr]
    assert untransform(text) == question
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == -(-len(text) // 4)
    again = client.messages.create(
        model=MODEL,
        max_tokens=200,
        system="be brief",
        messages=[{"role": "user", "content": question}],
    )
    assert again.content == message.content and again.id == message.id

    cut = client.messages.create(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": question}]
    )
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens <= 2


@pytest.mark.parametrize(
    ("text", "status", "error_class", "error_type"),
    [
        ("SIM_FAIL_400 please", 400, anthropic.BadRequestError, "invalid_request_error"),
        ("SIM_FAIL_429 please", 429, anthropic.RateLimitError, "rate_limit_error"),
        ("SIM_FAIL_500 please", 500, anthropic.InternalServerError, "api_error"),
        ("SIM_FAIL_529 please", 529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_marker_errors_have_anthropic_status_and_type(
    client: Anthropic, text: str, status: int, error_class: type[Exception], error_type: str
) -> None:
    """Each SIM_FAIL marker gives its status, the SDK's class and Anthropic's error body."""
    with pytest.raises(error_class) as caught:
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": text}]
        )
    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": error.body["error"]["message"]},
    }  # type: ignore[index]
    assert error.response.headers["request-id"]
    if status == 429 or status >= 500:
        assert error.response.headers["retry-after"] == "0"


@pytest.mark.parametrize("missing", ["model", "max_tokens", "messages"])
def test_missing_required_param_is_400(client: Anthropic, missing: str) -> None:
    """A Messages call without model, max_tokens or messages is an invalid_request_error."""
    # the SDK's generic post: messages.create itself needs max_tokens before sending
    params = {k: v for k, v in _params("hi").items() if k != missing}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", body=params, cast_to=Message)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert missing in caught.value.body["error"]["message"]  # type: ignore[index]


def test_slow_marker_delays_the_answer(client: Anthropic) -> None:
    """SIM_SLOW_<ms> makes a real-time call take at least that long."""
    started = time.monotonic()
    answer = client.messages.create(**_params("SIM_SLOW_300 wait"))
    assert time.monotonic() - started >= 0.3
    assert answer.stop_reason == "end_turn"


def test_missing_or_wrong_key_is_401(sim: SimServer) -> None:
    """No key header at all → 401 authentication_error; a configured key must match."""
    response = httpx.post(sim.url + "/v1/messages", json=_params("hi"))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"]
    ok = httpx.post(sim.url + "/v1/messages", json=_params("hi"), headers={"x-api-key": "k"})
    assert ok.status_code == 200

    with SimServer(SimConfig(speed=1000, api_key="right")) as keyed:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            Anthropic(base_url=keyed.url, api_key="wrong", max_retries=0).messages.create(
                **_params("hi")
            )
        assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        assert (
            "right" not in caught.value.response.text and "wrong" not in caught.value.response.text
        )
        good = Anthropic(base_url=keyed.url, api_key="right", max_retries=0)
        assert good.messages.create(**_params("hi")).stop_reason == "end_turn"


def test_faults_at_a_rate_are_survived_by_sdk_retries() -> None:
    """With 30% injected 429/500/529 the SDK's own retries get every answer, one batch only."""
    with SimServer(SimConfig(speed=1000, fault_rate=0.3, seed=7)) as sim:
        bare = Anthropic(base_url=sim.url, api_key="sim", max_retries=0)
        statuses: set[int] = set()
        for _ in range(200):  # seeded draws: every kind shows up well within 200 calls
            if statuses == {429, 500, 529}:
                break
            try:
                bare.messages.create(**_params("ping"))
            except anthropic.APIStatusError as exc:
                assert exc.body["type"] == "error"  # type: ignore[index]
                statuses.add(exc.status_code)
        assert statuses == {429, 500, 529}

        retrying = Anthropic(base_url=sim.url, api_key="sim", max_retries=20)
        for i in range(20):
            answer = retrying.messages.create(**_params(f"question {i}"))
            assert untransform(answer.content[0].text) == f"question {i}"  # type: ignore[union-attr]
        batch = retrying.messages.batches.create(requests=[_request(f"r{i}") for i in range(5)])
        _ended(retrying, batch.id)
        assert [b.id for b in retrying.messages.batches.list()] == [batch.id]
        assert len(_results(retrying, batch.id)) == 5


# --- batches --------------------------------------------------------------------------------


def test_batch_ends_with_each_result_type_out_of_order(client: Anthropic) -> None:
    """Every custom_id comes back once, not in input order, with its marker's result type."""
    requests = [_request(f"ok-{i}", f"question number {i}") for i in range(20)]
    requests += [
        _request("bad_marker", "SIM_FAIL_400 no"),
        {
            "custom_id": "bad_params",
            "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        },
        _request("api", "SIM_FAIL_500"),
        _request("SIM_FAIL_529-in-id"),
        _request("late", "SIM_EXPIRED"),
        _request("gone", "SIM_CANCELED"),
    ]
    created = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert created.id.startswith("msgbatch_") and created.type == "message_batch"
    assert created.processing_status == "in_progress" and created.results_url is None
    assert created.request_counts.processing == len(requests)
    assert (created.expires_at - created.created_at).total_seconds() == 24 * 3600

    ended = _ended(client, created.id)
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 20, 4)
    assert (counts.expired, counts.canceled) == (1, 1)
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at
    assert ended.results_url and ended.cancel_initiated_at is None

    results = _results(client, created.id)
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted(r["custom_id"] for r in requests)
    assert ids != [r["custom_id"] for r in requests]
    by_id = {r.custom_id: r.result for r in results}
    for i in range(20):
        answer = by_id[f"ok-{i}"]
        assert answer.type == "succeeded"
        assert untransform(answer.message.content[0].text) == f"question number {i}"
        assert answer.message.usage.output_tokens > 0
    errors = {
        cid: by_id[cid].error.error.type
        for cid in ("bad_marker", "bad_params", "api", "SIM_FAIL_529-in-id")
    }
    assert errors == {
        "bad_marker": "invalid_request_error",
        "bad_params": "invalid_request_error",
        "api": "api_error",
        "SIM_FAIL_529-in-id": "overloaded_error",
    }
    assert "max_tokens" in by_id["bad_params"].error.error.message
    assert by_id["late"].type == "expired" and by_id["gone"].type == "canceled"


def test_cancel_then_delete_only_when_ended(client: Anthropic) -> None:
    """Cancel → canceling → ended with canceled results; delete is refused until ended."""
    requests = [_request(f"slow-{i}", "SIM_SLOW_60000 take your time") for i in range(10)]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.batches.delete(batch.id)
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]

    with pytest.raises(anthropic.BadRequestError):  # no results before the batch ends
        client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=httpx.Response)

    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended")
    assert canceling.cancel_initiated_at is not None
    ended = _ended(client, batch.id)
    assert ended.request_counts.canceled > 0
    assert ended.request_counts.canceled + ended.request_counts.succeeded == 10
    results = _results(client, batch.id)
    assert sorted(r.custom_id for r in results) == sorted(r["custom_id"] for r in requests)
    assert sum(r.result.type == "canceled" for r in results) == ended.request_counts.canceled

    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.batches.retrieve(batch.id)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_ambiguous_create_makes_the_batch_but_answers_500() -> None:
    """SIM_AMBIGUOUS_CREATE in a custom_id: the create fails with 500 yet the batch exists."""
    with SimServer(SimConfig(speed=1000)) as sim:
        client = Anthropic(base_url=sim.url, api_key="sim", max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.batches.create(
                requests=[_request("a-SIM_AMBIGUOUS_CREATE"), _request("b")]
            )
        assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
        listed = client.messages.batches.list().data
        assert len(listed) == 1
        assert len(_results(client, _ended(client, listed[0].id).id)) == 2


def test_list_pages_newest_first_with_after_and_before() -> None:
    """List is newest first; after_id / before_id page through it; the SDK iterates all."""
    with SimServer(SimConfig(speed=1000)) as sim:
        client = Anthropic(base_url=sim.url, api_key="sim", max_retries=0)
        made = [client.messages.batches.create(requests=[_request(f"b{i}")]).id for i in range(5)]
        newest_first = made[::-1]
        first = client.messages.batches.list(limit=2)
        assert [b.id for b in first.data] == newest_first[:2] and first.has_more
        assert (first.first_id, first.last_id) == (newest_first[0], newest_first[1])
        after = client.messages.batches.list(limit=2, after_id=newest_first[1])
        assert [b.id for b in after.data] == newest_first[2:4] and after.has_more
        last = client.messages.batches.list(limit=2, after_id=newest_first[3])
        assert [b.id for b in last.data] == newest_first[4:] and not last.has_more
        before = client.messages.batches.list(limit=2, before_id=newest_first[3])
        assert [b.id for b in before.data] == newest_first[1:3] and before.has_more
        assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.list(limit=1001)


@pytest.mark.parametrize(
    ("requests", "words"),
    [
        ([_request("has space")], "custom_id"),
        ([_request("x" * 65)], "custom_id"),
        ([_request("twice"), _request("twice")], "duplicate"),
        ([], "requests"),
        ([{"custom_id": "no-params"}], "params"),
    ],
)
def test_invalid_batch_create_is_400(
    client: Anthropic, requests: list[JsonDict], words: str
) -> None:
    """Bad custom_ids, duplicates, no requests or no params are refused, creating nothing."""
    before = len(client.messages.batches.list(limit=1000).data)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert words in caught.value.body["error"]["message"]  # type: ignore[index]
    assert len(client.messages.batches.list(limit=1000).data) == before


def test_oversized_batch_is_413_request_too_large() -> None:
    """A create body over the size limit answers 413 request_too_large."""
    with SimServer(SimConfig(speed=1000, anthropic_max_bytes=10_000)) as sim:
        client = Anthropic(base_url=sim.url, api_key="sim", max_retries=0)
        requests = [_request(f"r{i}", "words " * 50) for i in range(50)]
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        assert caught.value.status_code == 413
        assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_large_batch_results_stream_every_line(sim: SimServer) -> None:
    """20,000 requests: results are written and streamed with flat memory, each custom_id
    once, out of input order (memory traced from after the create: polling, writing the
    results file at `ended` and streaming it)."""
    requests = [_request(f"req-{i}", f"question {i}") for i in range(20_000)]
    body = json.dumps({"requests": requests})
    created = httpx.post(
        sim.url + "/v1/messages/batches", content=body, headers={"x-api-key": "k"}, timeout=60
    )
    assert created.status_code == 200, created.text
    client = Anthropic(base_url=sim.url, api_key="sim", max_retries=0)
    batch_id = created.json()["id"]
    tracemalloc.start()
    assert _ended(client, batch_id).request_counts.succeeded == 20_000
    seen = bytearray(20_000)  # a bitmap, so the check itself costs no memory to speak of
    first: list[str] = []
    streamed = 0
    url = f"{sim.url}/v1/messages/batches/{batch_id}/results"
    with httpx.stream("GET", url, headers={"x-api-key": "k"}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            streamed += len(line)
            custom_id = json.loads(line)["custom_id"]
            index = int(custom_id.removeprefix("req-"))
            assert not seen[index], f"{custom_id} twice"
            seen[index] = 1
            if len(first) < 10:
                first.append(custom_id)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert all(seen)
    assert peak < streamed / 4, f"peak {peak} bytes for {streamed} bytes of results"
    assert first != [f"req-{i}" for i in range(10)]
