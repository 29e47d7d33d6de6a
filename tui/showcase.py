"""A fixed, realistic data set for screenshots, snapshot tests and `--once` golden files.

Everything is written through the store's own write functions at explicit times relative
to a frozen `now`, so a picture rendered from it is the same on every machine and day.
Workers live on a made-up host, so their liveness is judged by heartbeat age alone.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

from batchdash.core.batch_records import ItemResult, NewBatch
from batchdash.core.db import DbLocation, open_sync_store
from batchdash.core.db.ports import Tx
from batchdash.core.models import JobFilter, JobStatus, NewJob, Outcome, Worker
from batchdash.core.qa_models import QAResult

#: The frozen clock of the showcase: 2026-05-04 09:30:00 UTC.
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC).timestamp()

HOST = "gpu-box"
WORKERS = ("gpu-box-4121-a1f3", "gpu-box-4122-b7c2", "gpu-box-4123-c9d4", "laptop-881-0e1f")
JUDGES = ("gpt-4o", "gpt-4o-mini")
DIMENSIONS = ("accuracy", "fluency", "terminology", "completeness")

_TOPICS = (
    "sparse attention for long documents",
    "protein folding with diffusion models",
    "low-rank adaptation of vision transformers",
    "causal discovery in time series",
    "retrieval-augmented code generation",
    "federated learning under label skew",
)
_FAILURES = (
    "HTTP 400: Invalid 'messages[0].content': string too long. Expected a string with "
    "maximum length 1048576, but got a string with length 1310720 instead. [details]",
    "HTTP 500: The server had an error while processing your request. Sorry about that!",
    "context_length_exceeded: [bold red]Please reduce[/] the length of the messages "
    "(131072 tokens; this model's maximum context length is 128000 tokens).",
    'sim: permanent failure of arxiv-2405.01234 (model output: ```json {"a": [1, 2]}```)',
)


def seed(where: DbLocation | Path | str, now: float = NOW) -> None:
    """Create the showcase database at `where`: a file that must not exist yet, or an empty
    (migrated) PostgreSQL database."""
    location = where if isinstance(where, DbLocation) else DbLocation(path=Path(str(where)))
    with open_sync_store(location) as db:
        rng = random.Random(7)
        db.write(lambda tx: _jobs(tx, rng, now))
        db.write(lambda tx: _batches(tx, now))
        db.write(lambda tx: _qa(tx, rng, now))


def _request(key: str, topic: str) -> dict[str, object]:
    return {
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Translate the abstract into German."},
                {"role": "user", "content": f"{key}: We study {topic}. [Abstract text …]"},
            ],
        },
    }


def _reply(key: str, topic: str) -> str:
    body = {
        "id": f"chatcmpl-{key}",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Wir untersuchen {topic} …"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 412, "completion_tokens": 388},
    }
    return json.dumps(body)


def _jobs(tx: Tx, rng: random.Random, now: float) -> None:
    papers = [
        NewJob(key=f"arxiv-2405.{1200 + i:05d}", payload=_request(f"arxiv-2405.{1200 + i:05d}", t))
        for i, t in enumerate(_TOPICS[i % len(_TOPICS)] for i in range(60))
    ]
    tx.jobs.enqueue("papers", "openai", papers, now - 1000, None)
    chats = [NewJob(key=f"chat-{i:04d}", payload={"prompt": f"question {i}"}) for i in range(25)]
    tx.jobs.enqueue("chat", "sim", chats, now - 950, None)
    later = [NewJob(key=f"summary-{i:03d}", payload={"doc": i}) for i in range(15)]
    tx.jobs.enqueue("summaries", "sim", later, now - 900, None)
    tx.queues.set_paused("summaries", True, now - 600)

    for index, worker_id in enumerate(WORKERS):
        _register(tx, worker_id, index, now)
    # papers: 38 succeeded over the last 15 minutes, 4 failed, 2 retrying, 3 running.
    t = now - 880
    for i in range(38):
        t += rng.uniform(10, 30)
        _attempt(tx, "papers", WORKERS[i % 2], t, JobStatus.SUCCEEDED, tokens=(412, 388))
    for i, error in enumerate(_FAILURES):
        _attempt(tx, "papers", WORKERS[0], now - 300 + i * 40, JobStatus.FAILED, error=error)
    for i in range(2):
        _attempt(tx, "papers", WORKERS[1], now - 20 + i, JobStatus.PENDING, retry_at=now + 40)
    for worker_id in (WORKERS[0], WORKERS[0], WORKERS[1]):
        tx.jobs.claim(worker_id, f"tok-{worker_id}", 1, 30.0, ("papers",), now - 4)
    # chat: 20 succeeded, 2 cancelled, 3 running.
    t = now - 800
    for _ in range(20):
        t += rng.uniform(15, 35)
        _attempt(tx, "chat", WORKERS[1], t, JobStatus.SUCCEEDED, tokens=(60, 120))
    tx.jobs.claim(WORKERS[1], "tok-chat", 3, 30.0, ("chat",), now - 2)
    last = tx.jobs.list_jobs(JobFilter(queues=("chat",), statuses=("pending",)), order="-id")
    tx.jobs.cancel(JobFilter(ids=tuple(j.id for j in last[:2])), now - 120)
    _heartbeats(tx, now)


def _register(tx: Tx, worker_id: str, index: int, now: float) -> None:
    host = HOST if worker_id.startswith(HOST) else "laptop"
    started = now - 3600 * (index + 1)
    tx.workers.register_worker(
        Worker(
            id=worker_id,
            host=host,
            pid=int(worker_id.split("-")[-2]),
            started_at=started,
            heartbeat_at=started,
            heartbeat_interval=1.0,
            state="idle",
            queues=["papers", "chat"] if index < 2 else [],
            concurrency=4,
        ),
    )


def _attempt(
    tx: Tx,
    queue: str,
    worker_id: str,
    end: float,
    status: JobStatus,
    *,
    tokens: tuple[int, int] | None = None,
    error: str | None = None,
    retry_at: float = 0.0,
) -> None:
    """Claim the next job of `queue` and end the attempt at `end` with `status`."""
    (claim,) = tx.jobs.claim(worker_id, f"tok-{end}", 1, 30.0, (queue,), end - 4.2)
    topic = str(claim.payload)[-40:] if queue == "papers" else "chat"
    outcome = Outcome(
        job_id=claim.job_id,
        token=claim.token,
        status=status,
        finished_at=end,
        result_json=_reply(claim.key, topic) if status == JobStatus.SUCCEEDED else None,
        error=error or ("HTTP 429: Rate limit reached for gpt-4o-mini" if retry_at else None),
        error_kind="http_429" if retry_at else ("http_400" if error else None),
        run_after=retry_at,
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        cost=(tokens[0] * 0.15 + tokens[1] * 0.6) / 1e6 if tokens else None,
        event="retry_scheduled" if retry_at else "",
        detail=f"attempt {claim.attempts}/{claim.max_attempts}" if retry_at else None,
    )
    tx.jobs.finish(worker_id, [outcome])


def _heartbeats(tx: Tx, now: float) -> None:
    running = tx.jobs.list_jobs(JobFilter(statuses=("running",)))
    held = {w: [(j.id, j.claim_token or "") for j in running if j.worker_id == w] for w in WORKERS}
    beats = (
        (WORKERS[0], "busy", 0.4, 31, 4),
        (WORKERS[1], "busy", 1.8, 29, 0),
        (WORKERS[2], "idle", 45.0, 12, 1),
    )
    for worker_id, state, ago, done, failed in beats:
        tx.workers.heartbeat(worker_id, state, held[worker_id], done, failed, 30.0, now - ago)
    tx.workers.heartbeat(WORKERS[3], "idle", [], 57, 2, 30.0, now - 7200)
    tx.workers.set_worker_state(WORKERS[3], "stopped", now - 7200)


def _batches(tx: Tx, now: float) -> None:
    running = _batch(tx, "batch-papers", "batch_6a1f0c2e", 40, now - 5400, "in_progress")
    tx.batches.update_batch(
        running,
        {
            "state": "running",
            "completed": 25,
            "failed": 2,
            "in_progress_at": now - 5000,
            "expires_at": now - 5400 + 86400,
            "input_file_id": "file-in-6a1f",
            "polled_at": now - 12,
        },
        now - 12,
    )
    done = _batch(tx, "batch-papers", "batch_59c3e7d1", 20, now - 9000, "completed")
    results = [
        (ItemResult(f"done-{i:03d}", "succeeded", 200, result_json=_reply("x", "y")), "succeeded")
        for i in range(17)
    ] + [
        (ItemResult(f"done-{i:03d}", "non_2xx", 400, "invalid_request", "bad model"), "failed")
        for i in range(17, 20)
    ]
    tx.items.apply_item_results(
        done,
        [(r, status, None if status == "succeeded" else r.outcome) for r, status in results],
        now - 3000,
    )
    tx.batches.update_batch(
        done,
        {
            "completed": 17,
            "failed": 3,
            "completed_at": now - 3000,
            "input_file_id": "file-in-59c3",
            "output_file_id": "file-out-59c3",
            "error_file_id": "file-err-59c3",
        },
        now - 3000,
    )
    tx.items.close_ingest(done, "partial", now - 3000)
    final = _batch(tx, "batch-chat", "batch_7d20aa90", 12, now - 1500, "finalizing")
    tx.batches.update_batch(
        final,
        {"state": "finalizing", "completed": 12, "finalizing_at": now - 190},
        now - 30,
    )


def _batch(tx: Tx, queue: str, remote_id: str, n: int, at: float, raw: str) -> int:
    prefix = "done" if raw == "completed" else remote_id[-4:]
    batch_id = tx.batches.add_batch(
        NewBatch(
            queue=queue,
            endpoint="/v1/chat/completions",
            model="gpt-4o-mini",
            remote_id=remote_id,
            state="running",
            raw_status=raw,
            total=n,
        ),
        at,
    )
    lines = [
        (
            i + 1,
            f"{prefix}-{i:03d}",
            f"{prefix}-{i:03d}",
            json.dumps(_request(f"{prefix}-{i}", "x")),
        )
        for i in range(n)
    ]
    tx.items.add_batch_lines(batch_id, queue, "openai", lines, at)
    tx.items.batch_lines_enqueued(batch_id, at)
    return batch_id


def _qa(tx: Tx, rng: random.Random, now: float) -> None:
    scored = tx.jobs.list_jobs(
        JobFilter(statuses=("succeeded",), queues=("papers",)), limit=16, order="id"
    )
    for n, job in enumerate(scored):
        base = rng.uniform(6.0, 9.5)
        for judge in JUDGES:
            shift = -4.5 if (n == 3 and judge == JUDGES[1]) else rng.uniform(-0.8, 0.8)
            scores = {
                d: round(min(10, max(1, base + shift + rng.uniform(-1, 1))), 1) for d in DIMENSIONS
            }
            scores["overall"] = round(sum(scores.values()) / len(scores), 1)
            tx.qa.save_qa_result(
                QAResult(
                    job_id=job.id,
                    judge=judge,
                    scores=scores,
                    comment="terminology drifts in the methods section" if n % 5 == 0 else None,
                    error=None,
                    raw=None,
                    input_tokens=900,
                    output_tokens=80,
                    cost=0.0002,
                    created_at=now - 600 + n * 10,
                ),
                replace=True,
            )
