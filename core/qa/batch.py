"""QA as a remote batch: judge requests written as JSONL, submitted, and verdicts collected.

Billed at the batch rate. Requests go one file per (queue, judge) into `qa:<queue>`, to
Anthropic's Message Batches for a Claude judge, to the OpenAI Batch API otherwise;
`collect_batches` stores the verdicts once the sync cycle has ingested the results.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import remote
from batchdash.core.db.location import DbLocation
from batchdash.core.db.ports import Store, Tx
from batchdash.core.endpoints import resolve
from batchdash.core.models import (
    QA_QUEUE_PREFIX,
    TERMINAL_JOB_STATUSES,
    Batch,
    Job,
    JobFilter,
    JobStatus,
)
from batchdash.core.providers import DEFAULT_PROVIDER
from batchdash.core.qa.judge import (
    JudgeCall,
    is_claude,
    judge_request,
    request_body,
    request_dimensions,
)
from batchdash.core.qa.plan import pages, plan, store_verdicts
from batchdash.core.qa_models import QAResult

#: Batch metadata key that marks a QA batch; its value says whether verdicts replace scores.
QA_BATCH_META = "batchdash_qa"
_CHAT_URL = "/v1/chat/completions"
_QA_CUSTOM_ID = re.compile(r"qa-(\d+)-")


def qa_dir(where: DbLocation) -> Path:
    """Where QA batch input files are kept (this host's state folder of the database, so a
    resubmission finds them; a PostgreSQL database has no folder of its own)."""
    return where.state_dir() / "qa"


def _slug(text: str, size: int) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:size]


def custom_id(job_id: int, judge: str, run: str) -> str:
    """`qa-<job>-<judge>-<run>`: 1–64 chars of [A-Za-z0-9_-], unique per submission."""
    room = 64 - len(f"qa-{job_id}--{run}")
    return f"qa-{job_id}-{_slug(judge, room)}-{run}"


@dataclass(slots=True)
class BatchFiles:
    """Judge requests written for one `qa run --as-batch`: a file per (queue, judge)."""

    paths: dict[tuple[str, str], Path]
    lines: int = 0
    skipped: int = 0


def write_batch_requests(
    tx: Tx,
    job_ids: Sequence[int],
    judges: Sequence[str],
    *,
    rescore: bool,
    folder: Path,
) -> BatchFiles:
    """Write JSONL judge requests, one file per (queue, judge) since a batch has one model.

    Pairs already scored (unless `rescore`) or already waiting in a QA batch are skipped.
    """
    run = uuid.uuid4().hex[:6]
    files = BatchFiles({})
    inflight: dict[str, set[str]] = {}
    with contextlib.ExitStack() as stack:
        outputs: dict[tuple[str, str], Any] = {}
        for page in pages(job_ids, 500):
            work = plan(tx, page, judges, rescore)
            files.skipped += work.skipped
            for job, judge, rubric in work.pairs:
                qa_queue = QA_QUEUE_PREFIX + job.queue
                if qa_queue not in inflight:
                    keys = tx.batches.inflight_batch_keys(qa_queue)
                    inflight[qa_queue] = {key.rsplit("-", 1)[0] for key in keys}
                line_id = custom_id(job.id, judge, run)
                if line_id.rsplit("-", 1)[0] in inflight[qa_queue]:
                    files.skipped += 1
                    continue
                group = (job.queue, judge)
                if group not in outputs:
                    folder.mkdir(parents=True, exist_ok=True)
                    name = f"{_slug(job.queue, 40)}-{_slug(judge, 40)}-{run}.jsonl"
                    files.paths[group] = folder / name
                    outputs[group] = stack.enter_context(files.paths[group].open("w"))
                line = _request_line(line_id, judge_request(job, judge, rubric), judge)
                outputs[group].write(json.dumps(line, ensure_ascii=False) + "\n")
                files.lines += 1
    return files


def _request_line(line_id: str, request: dict[str, Any], judge: str) -> dict[str, Any]:
    """A batch input line: Message Batches' `{custom_id, params}` for a Claude judge."""
    if is_claude(judge):
        return {"custom_id": line_id, "params": request}
    return {"custom_id": line_id, "method": "POST", "url": _CHAT_URL, "body": request}


def _provider(judge: str) -> str:
    return "anthropic" if is_claude(judge) else DEFAULT_PROVIDER


async def submit_batches(
    db: Store,
    job_ids: Sequence[int],
    judges: Sequence[str],
    *,
    rescore: bool,
    endpoint_name: str | None = None,
) -> tuple[list[int], BatchFiles]:
    """Submit judge requests as remote batches into `qa:<queue>`; (local batch ids, files).

    `endpoint_name` is the config file's named endpoint they go to (None: the default).
    Verdicts are stored by `collect_batches` once the sync cycle has ingested the results.
    """
    # A named endpoint must serve every judge's provider; no key: fail before any file.
    for judge in judges:
        resolve(endpoint_name, _provider(judge)).key()
    folder = qa_dir(db.location)
    write = partial(write_batch_requests, job_ids=job_ids, judges=judges, rescore=rescore)
    files = await db.read(partial(write, folder=folder))
    ids: list[int] = []
    for (queue, judge), path in sorted(files.paths.items()):
        ids += await remote.submit_file(
            db,
            path,
            queue=QA_QUEUE_PREFIX + queue,
            endpoint=None if is_claude(judge) else _CHAT_URL,
            metadata={QA_BATCH_META: "rescore" if rescore else "keep"},
            endpoint_name=endpoint_name,
            provider=_provider(judge),
        )
    return ids, files


def _batch_verdict(job: Job, batch_id: int) -> QAResult | None:
    """The verdict one QA batch line holds, None when it is not a settled QA line."""
    match = _QA_CUSTOM_ID.match(job.key)
    body = request_body(job.payload)
    if match is None or not isinstance(body, dict) or job.status not in TERMINAL_JOB_STATUSES:
        return None
    call = JudgeCall(int(match[1]), str(body.get("model")), batch=True, batch_id=batch_id)
    if job.status == JobStatus.SUCCEEDED:
        return call.verdict(job.result, request_dimensions(body))
    raw = None if job.result is None else json.dumps(job.result, ensure_ascii=False)
    return call.error(f"judge batch line {job.error_kind or job.status}: {job.error}", raw)


def _jobs_page(tx: Tx, flt: JobFilter, limit: int, offset: int) -> list[Job]:
    return tx.jobs.list_jobs(flt, limit=limit, offset=offset)


def _mark_collected(tx: Tx, batch: Batch, detail: str, now: float) -> None:
    tx.batches.mark_qa_collected(batch, detail, now)


async def collect_batches(db: Store, page: int = 1000) -> int:
    """Store the verdicts of QA batches whose results were ingested; returns how many batches.

    Each batch is collected once (a `qa_collected` event marks it); saving is idempotent,
    so a crash halfway only means the next cycle saves the same verdicts again.
    """
    done = 0
    for batch in await db.read(lambda tx: tx.batches.qa_batches_to_collect(meta_key=QA_BATCH_META)):
        replace = isinstance(batch.metadata, dict) and batch.metadata[QA_BATCH_META] == "rescore"
        flt = JobFilter(batch_id=batch.id)
        scored = errors = offset = 0
        while jobs := await db.read(partial(_jobs_page, flt=flt, limit=page, offset=offset)):
            offset += len(jobs)
            results = [r for r in (_batch_verdict(j, batch.id) for j in jobs) if r is not None]
            saved = await db.write(partial(store_verdicts, results=results, replace=replace))
            scored, errors = scored + saved[0], errors + saved[1]
        detail = f"{scored} verdicts, {errors} QA errors"
        await db.write(partial(_mark_collected, batch=batch, detail=detail, now=time.time()))
        done += 1
    return done
