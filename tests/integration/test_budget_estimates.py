"""Estimates before spending, as a user runs them: `submit --estimate` and `enqueue
--estimate` print tokens and the cost range and create nothing (no database, no upload);
`submit --max-usd` refuses a file whose upper estimate exceeds it, in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batchdash.core.sim.server import SimConfig, SimServer
from tests.conftest import cli

#: 400 characters of prompt (100 tokens at four characters a token), at most 50 out.
PROMPT = "x" * 400


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(speed=1000)) as server:
        yield server


def _requests(path: Path, model: str, n: int, **body: object) -> Path:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": PROMPT}], **body},
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _uploads(sim: SimServer) -> list[object]:
    answer = httpx.get(f"{sim.base_url}/files", headers={"Authorization": "Bearer sim"})
    files: list[object] = answer.json()["data"]
    return files


def test_submit_estimate_prints_the_batch_price_range_and_creates_nothing(
    tmp_path: Path, db_path: Path, sim: SimServer
) -> None:
    requests = _requests(tmp_path / "req.jsonl", "gpt-4o-mini", 1000, max_tokens=50)
    env = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}
    out = cli("submit", str(requests), "--estimate", "--db", str(db_path), **env)
    # gpt-4o-mini: $0.15 in / $0.60 out per million, half at the batch price.
    assert out.stdout.splitlines() == [
        "estimate at the batch price (nothing created):",
        "  gpt-4o-mini: 1,000 requests, 100,000 input tokens, output bound 50,000 tokens, "
        "$0.0075 to $0.0225",
        "  total: $0.0075 to $0.0225",
    ]
    assert not db_path.exists() and _uploads(sim) == []


def test_submit_max_usd_refuses_an_estimate_over_it(
    tmp_path: Path, db_path: Path, sim: SimServer
) -> None:
    requests = _requests(tmp_path / "req.jsonl", "gpt-4o", 100)  # no cap: 4,096 out each
    env = {"OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sim"}
    refused = cli(
        "submit", str(requests), "--max-usd", "1", "--db", str(db_path), check=False, **env
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        "batchdash: error: --max-usd: upper estimate $2.06 exceeds the limit $1.00; "
        "nothing submitted\n"
    )
    assert not db_path.exists() and _uploads(sim) == []
    unknown = _requests(tmp_path / "odd.jsonl", "mystery-1", 1)
    refused = cli(
        "submit", str(unknown), "--max-usd", "1", "--db", str(db_path), check=False, **env
    )
    assert refused.returncode == 2
    assert "unknown price for mystery-1: cannot check the limit" in refused.stderr


def test_enqueue_estimate_prices_each_model_in_real_time_and_leaves_the_store(
    tmp_path: Path, db_path: Path
) -> None:
    cli("init", "--db", str(db_path))
    before = db_path.read_bytes()
    mixed = tmp_path / "mixed.jsonl"
    lines = _requests(tmp_path / "a.jsonl", "gpt-4o-mini", 2, max_completion_tokens=10)
    other = _requests(tmp_path / "b.jsonl", "mystery-1", 1)
    mixed.write_text(lines.read_text() + other.read_text().replace('"r0"', '"m0"'))
    out = cli("enqueue", str(mixed), "--estimate", "--db", str(db_path))
    assert out.stdout.splitlines() == [
        "estimate at the real-time price (nothing created):",
        "  gpt-4o-mini: 2 requests, 200 input tokens, output bound 20 tokens, $0.0000 to $0.0000",
        "  mystery-1: 1 request, 100 input tokens, output bound 4,096 tokens, unknown price",
        "  total: $0.0000 to $0.0000 (plus mystery-1: unknown price)",
    ]
    assert db_path.read_bytes() == before
    assert cli("jobs", "list", "--db", str(db_path)).stdout.endswith("0 of 0 jobs\n")
