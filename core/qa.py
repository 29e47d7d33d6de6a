"""Judge-model scoring: rubrics, judge requests, parsing verdicts, sampling and QA runs.

A judge is a chat model asked, through the OpenAI-compatible chat API with a JSON-schema
response format, for integer scores 1–10 on each rubric dimension (always `overall`) plus
a short comment. What it sees is the job's input (the request's messages, or the payload
as JSON) and its output (the reply's text, or the result as JSON), both cut to a sane size.

A verdict that is not valid JSON, misses a dimension or has a score out of range is stored
as a QA error with the judge's raw text — never a crash, never a made-up score. Failed
calls (429/5xx after the SDK's retries, timeouts, no API key) are stored as errors too.

Scoring happens in three places: `batchdash qa run` (`run_qa` over a deterministic
sample), workers scoring every Nth success of a queue (`WorkerQA`), and QA as a remote batch
(`write_batch_requests` / `collect_batch`), billed at the batch rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from batchdash.core import remote
from batchdash.core.db.ports import Store, Tx
from batchdash.core.errors import InvalidInputError
from batchdash.core.models import QA_QUEUE_PREFIX as QA_QUEUE_PREFIX  # re-exported (tui uses qa.…)
from batchdash.core.models import (
    TERMINAL_JOB_STATUSES,
    Batch,
    Job,
    JobFilter,
    JobStatus,
    QAResult,
)
from batchdash.core.pricing import price_of
from batchdash.core.providers import DEFAULT_PROVIDER, _openai, get_provider

#: Judge used when none is named.
DEFAULT_JUDGE = "gpt-4o-mini"
#: Scores are integers in this inclusive range.
MIN_SCORE, MAX_SCORE = 1, 10
#: Input and output are each cut to this many characters before the judge sees them.
MAX_TEXT_CHARS = 12_000
#: Raw judge text kept with an error row (enough to see what went wrong).
MAX_RAW_CHARS = 4_000
#: Longest comment the schema asks for.
MAX_COMMENT_CHARS = 300
#: The SDK retries 429/5xx/timeouts this many times, honouring retry-after.
JUDGE_RETRIES = 3
#: Seconds one judge call may take.
JUDGE_TIMEOUT = 120.0
#: Judge calls one worker runs at once beside its jobs.
WORKER_QA_CONCURRENCY = 4
#: How the error of a judge call that got no answer starts.
CALL_FAILED = "judge call failed: "
#: ... and of one whose API key was refused: `qa run` makes no further calls then.
_KEY_REFUSED = f"{CALL_FAILED}HTTP 401:"

_DIMENSION_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

DEFAULT_PROMPT = """\
You review machine translations and similar text-to-text work. Compare the OUTPUT with \
the INPUT it was produced from and score it:
- accuracy: the meaning is preserved; nothing added, dropped or mistranslated.
- fluency: natural, grammatical text in the target language.
- terminology: domain terms rendered correctly and consistently.
- completeness: everything is translated; nothing is cut off or left in the source language.
- overall: your overall judgement of the output's quality (not an average).
10 means flawless, 7 good with minor issues, 4 major problems, 1 unusable. Be strict. \
The comment names the most important problem in one sentence."""

DEFAULT_DIMENSIONS = ("overall", "accuracy", "fluency", "terminology", "completeness")


class RubricError(InvalidInputError):
    """A rubric file or stored rubric that is not usable."""


# --------------------------------------------------------------------------- rubric


@dataclass(frozen=True, slots=True)
class Rubric:
    """What judges are asked: an instruction and the dimensions to score (`overall` first)."""

    prompt: str = DEFAULT_PROMPT
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS

    @classmethod
    def from_json(cls, text: str, where: str) -> Rubric:
        """Parse and check `{"prompt": str, "dimensions": [str, ...]}`; `where` names it."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RubricError(f"{where}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RubricError(f"{where}: expected an object with prompt and dimensions")
        unknown = set(data) - {"prompt", "dimensions"}
        if unknown:
            raise RubricError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        prompt = data.get("prompt", DEFAULT_PROMPT)
        if not isinstance(prompt, str) or not prompt.strip():
            raise RubricError(f"{where}: prompt must be a non-empty string")
        names = data.get("dimensions", list(DEFAULT_DIMENSIONS))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RubricError(f"{where}: dimensions must be a list of names")
        for name in names:
            if not _DIMENSION_NAME.fullmatch(name) or name == "comment":
                raise RubricError(
                    f"{where}: bad dimension {name!r} (lower-case letters, digits, _; "
                    "not 'comment')"
                )
        # `overall` is always asked: filters, the worst list and disagreements use it.
        dimensions = tuple(dict.fromkeys(["overall", *names]))
        return cls(prompt=prompt.strip(), dimensions=dimensions)

    def to_json(self) -> str:
        """The rubric as stored in `queues.qa_rubric`."""
        return json.dumps({"prompt": self.prompt, "dimensions": list(self.dimensions)})

    def schema(self) -> dict[str, Any]:
        """The JSON schema of a verdict (strict structured output)."""
        score = {"type": "integer", "minimum": MIN_SCORE, "maximum": MAX_SCORE}
        properties: dict[str, Any] = {name: dict(score) for name in self.dimensions}
        properties["comment"] = {"type": "string", "maxLength": MAX_COMMENT_CHARS}
        return {
            "type": "object",
            "properties": properties,
            "required": [*self.dimensions, "comment"],
            "additionalProperties": False,
        }

    def system_prompt(self) -> str:
        """The instruction plus the scale, so a custom prompt need not repeat it."""
        return (
            f"{self.prompt}\n\nScore each of {', '.join(self.dimensions)} as an integer from "
            f"{MIN_SCORE} (worst) to {MAX_SCORE} (best), and add a short comment."
        )


DEFAULT_RUBRIC = Rubric()


def queue_rubric(tx: Tx, queue: str) -> Rubric:
    """The rubric a queue's jobs are judged by (its own, else the default)."""
    stored = tx.queues.get_qa_rubric(queue)
    if stored is None:
        return DEFAULT_RUBRIC
    return Rubric.from_json(stored, f"rubric of queue {queue!r}")


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True, slots=True)
class Sample:
    """How many matching jobs to judge: a count, a fraction, or (both None) all of them."""

    limit: int | None = None
    fraction: float | None = None


def parse_sample(text: str) -> Sample:
    """`200` → 200 jobs, `0.1` or `10%` → a tenth of them, `all` → every job."""
    value = text.strip()
    if value == "all":
        return Sample()
    if value.isdigit() and int(value) > 0:
        return Sample(limit=int(value))
    try:
        fraction = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise InvalidInputError(
            f"--sample {text!r}: expected a count (200), a fraction (0.1, 10%) or all"
        ) from None
    if not 0 < fraction <= 1:
        raise InvalidInputError(f"--sample {text!r}: a fraction must be in (0, 1]")
    return Sample(fraction=fraction)


def sample_ids(tx: Tx, flt: JobFilter, sample: Sample) -> list[int]:
    """The ids `qa run` judges: a deterministic sample of the matching jobs."""
    return tx.qa.qa_sample_ids(
        flt,
        limit=sample.limit,
        fraction=sample.fraction,
        skip_queue_prefix=QA_QUEUE_PREFIX,
    )


def parse_judges(text: str | None) -> tuple[str, ...]:
    """`a,b` → ("a", "b") in order, without duplicates; empty → the default judge."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return tuple(dict.fromkeys(names)) or (DEFAULT_JUDGE,)


def should_sample(count: int, every: int) -> bool:
    """True for exactly every `every`-th item of a running count (1-based)."""
    return every > 0 and count % every == 0


# --------------------------------------------------------------------------- requests


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return f"{text[:MAX_TEXT_CHARS]}\n[… {len(text) - MAX_TEXT_CHARS} more characters cut]"


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", f"[{p.get('type', 'part')}]") if isinstance(p, dict) else str(p)
            for p in content
        ]
        return "\n".join(str(p) for p in parts)
    return json.dumps(content, ensure_ascii=False)


def job_input_text(payload: Any) -> str:
    """What the job was asked: a request's messages, else the payload as JSON."""
    body = payload.get("body") if isinstance(payload, dict) else None
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list):
        return "\n\n".join(
            f"[{m.get('role', '?')}] {_content_text(m.get('content'))}"
            if isinstance(m, dict)
            else str(m)
            for m in messages
        )
    return json.dumps(payload, ensure_ascii=False, indent=1)


def _reply_text(response: Any) -> str | None:
    """`choices[0].message.content` of a chat completion, if it is one."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def job_output_text(result: Any) -> str:
    """What the job produced: the reply's text for a chat completion, else JSON."""
    # A batch output line wraps the completion in response.body.
    if isinstance(result, dict) and isinstance(result.get("response"), dict):
        result = result["response"].get("body", result)
    text = _reply_text(result)
    return text if text is not None else json.dumps(result, ensure_ascii=False, indent=1)


def judge_request(job: Job, judge: str, rubric: Rubric) -> dict[str, Any]:
    """The chat-completions body that asks `judge` to score `job` (also a batch line body)."""
    user = (
        f"INPUT:\n<<<\n{_cut(job_input_text(job.payload))}\n>>>\n\n"
        f"OUTPUT:\n<<<\n{_cut(job_output_text(job.result))}\n>>>"
    )
    return {
        "model": judge,
        "messages": [
            {"role": "system", "content": rubric.system_prompt()},
            {"role": "user", "content": user},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "qa_verdict", "strict": True, "schema": rubric.schema()},
        },
    }


def request_dimensions(body: Any) -> tuple[str, ...]:
    """The dimensions a judge request asked for (read back from its response schema)."""
    try:
        required = body["response_format"]["json_schema"]["schema"]["required"]
    except (KeyError, TypeError):
        return DEFAULT_DIMENSIONS
    return tuple(str(name) for name in required if name != "comment")


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True, slots=True)
class JudgeCall:
    """One judged (job, judge) pair before it is stored: who, and at which price."""

    job_id: int
    judge: str
    batch: bool = False
    batch_id: int | None = None

    def error(
        self,
        message: str,
        raw: str | None = None,
        tokens: tuple[int | None, int | None] = (None, None),
    ) -> QAResult:
        """A QA error row: no scores, the reason and whatever the judge said."""
        return self._write({}, None, message, raw, tokens)

    def _write(
        self,
        scores: dict[str, float],
        comment: str | None,
        error: str | None,
        raw: str | None,
        tokens: tuple[int | None, int | None],
    ) -> QAResult:
        tokens_in, tokens_out = tokens
        cost = None
        if tokens_in is not None or tokens_out is not None:
            cost = price_of(self.judge, tokens_in or 0, tokens_out or 0, batch=self.batch)
        return QAResult(
            job_id=self.job_id,
            judge=self.judge,
            scores=scores,
            comment=comment,
            error=error,
            raw=raw[:MAX_RAW_CHARS] if raw is not None else None,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
            created_at=time.time(),
            batch_id=self.batch_id,
        )

    def verdict(self, response: Any, dimensions: Sequence[str]) -> QAResult:
        """Turn a chat completion (as a JSON dict) into scores, or into an error row."""
        tokens = _openai.usage_tokens(response)
        text = _reply_text(response)
        if text is None:
            refusal = _refusal(response)
            reason = f"judge refused: {refusal}" if refusal else "judge reply has no text"
            return self.error(reason, json.dumps(response, ensure_ascii=False), tokens)
        try:
            scores, comment = parse_verdict(text, dimensions)
        except ValueError as exc:
            return self.error(str(exc), text, tokens)
        return self._write(scores, comment, None, None, tokens)


def _refusal(response: Any) -> str | None:
    try:
        refusal = response["choices"][0]["message"]["refusal"]
    except (KeyError, IndexError, TypeError):
        return None
    return refusal if isinstance(refusal, str) else None


def parse_verdict(text: str, dimensions: Sequence[str]) -> tuple[dict[str, float], str | None]:
    """Scores per dimension and the comment from a judge's JSON; ValueError if unusable."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"judge output is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"judge output is JSON but not an object ({type(data).__name__})")
    scores: dict[str, float] = {}
    problems: list[str] = []
    for name in dimensions:
        value = data.get(name)
        if value is None:
            problems.append(f"{name} missing")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name}={value!r} is not a number")
        # Range first: it also rejects inf and NaN before int() could choke on them.
        elif not MIN_SCORE <= value <= MAX_SCORE or value != int(value):
            problems.append(f"{name}={value!r} out of range")
        else:
            scores[name] = float(value)
    if problems:
        raise ValueError(
            f"judge scores invalid ({'; '.join(problems)}; expected integers "
            f"{MIN_SCORE}-{MAX_SCORE})"
        )
    comment = data.get("comment")
    return scores, comment.strip()[:MAX_COMMENT_CHARS] if isinstance(comment, str) else None


# --------------------------------------------------------------------------- calls


def open_client() -> Any:
    """A fresh AsyncOpenAI for judge calls (close it with `await client.close()`).

    Raises MissingKeyError when no API key is set. Unlike job calls, judge calls let the
    SDK retry 429/5xx with backoff honouring retry-after: there is no queue to retry them.
    """
    return _openai.new_client(retries=JUDGE_RETRIES, timeout=JUDGE_TIMEOUT)


async def judge_job(client: Any, job: Job, judge: str, rubric: Rubric) -> QAResult:
    """Ask one judge about one job; any failure becomes an error row, never an exception."""
    import openai

    call = JudgeCall(job.id, judge)
    body = judge_request(job, judge, rubric)
    try:
        completion = await client.chat.completions.create(**body)
    except openai.APIStatusError as exc:
        return call.error(f"{CALL_FAILED}HTTP {exc.status_code}: {_api_message(exc)}")
    except openai.APIError as exc:
        return call.error(f"{CALL_FAILED}{type(exc).__name__}: {exc}")
    return call.verdict(completion.model_dump(mode="json"), rubric.dimensions)


def _api_message(exc: Any) -> str:
    """The provider's own error message (the SDK's `message` prefixes the status again)."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message else str(exc.message)


@dataclass(slots=True)
class RunStats:
    """What a QA run did, for its summary line and exit code."""

    scored: int = 0
    errors: int = 0
    skipped: int = 0
    cost: float = 0.0
    unpriced: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: Calls not made because the provider refused the API key (no later call can work).
    unmade: int = 0
    refused: bool = False

    def top_reason(self) -> str:
        """The most frequent error of the run, without the common prefix ('' if none)."""
        top = self.reasons.most_common(1)
        return top[0][0].removeprefix(CALL_FAILED) if top else ""

    def add(self, result: QAResult, saved: bool) -> None:
        """Count one verdict (`saved` False: a concurrent run scored the pair first)."""
        if not saved:
            self.skipped += 1
            return
        if result.error is None:
            self.scored += 1
        else:
            self.errors += 1
            self.reasons[result.error] += 1
            self.refused = self.refused or result.error.startswith(_KEY_REFUSED)
        if result.cost is None:
            self.unpriced += result.input_tokens is not None
        else:
            self.cost += result.cost


@dataclass(frozen=True, slots=True)
class _Work:
    """The (job, judge, rubric) triples of one page still to judge, and how many were not."""

    pairs: list[tuple[Job, str, Rubric]]
    skipped: int


def _plan(tx: Tx, job_ids: Sequence[int], judges: Sequence[str], rescore: bool) -> _Work:
    """Load a page of jobs and pick the (job, judge) pairs still to judge."""
    jobs = tx.jobs.list_jobs(JobFilter(ids=tuple(job_ids)))
    done = set() if rescore else tx.qa.qa_scored_pairs(job_ids, judges)
    rubrics: dict[str, Rubric] = {}
    pairs: list[tuple[Job, str, Rubric]] = []
    for job in jobs:
        if job.queue not in rubrics:
            rubrics[job.queue] = queue_rubric(tx, job.queue)
        pairs.extend(
            (job, judge, rubrics[job.queue]) for judge in judges if (job.id, judge) not in done
        )
    return _Work(pairs, len(jobs) * len(judges) - len(pairs))


async def _judge_and_save(
    db: Store, client: Any, job: Job, judge: str, rubric: Rubric, rescore: bool
) -> tuple[QAResult, bool]:
    result = await judge_job(client, job, judge, rubric)
    saved = await db.write(lambda tx: tx.qa.save_qa_result(result, replace=rescore))
    return result, saved


def _pages(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    return (ids[i : i + size] for i in range(0, len(ids), size))


async def run_qa(
    db: Store,
    client: Any,
    job_ids: Sequence[int],
    judges: Sequence[str],
    *,
    rescore: bool = False,
    concurrency: int = 8,
    progress: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Judge the jobs with every judge (pairs already scored skipped unless `rescore`).

    Once the provider refuses the API key (HTTP 401) the remaining calls are not made;
    they are counted in `RunStats.unmade`.
    """
    stats = RunStats()
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Job, judge: str, rubric: Rubric) -> None:
        async with limit:
            if stats.refused:  # a rejected key fails every call: stop making them
                stats.unmade += 1
                return
            result, saved = await _judge_and_save(db, client, job, judge, rubric, rescore)
            stats.add(result, saved)
        if progress is not None:
            progress(stats)

    # Pages keep memory flat for big samples; a page is a few rounds of `concurrency`.
    for page in _pages(job_ids, max(100, concurrency * 4)):
        work = await db.read(partial(_plan, job_ids=page, judges=judges, rescore=rescore))
        stats.skipped += work.skipped
        await asyncio.gather(*(one(*pair) for pair in work.pairs))
    return stats


# --------------------------------------------------------------------------- worker sampling


class WorkerQA:
    """Scores every Nth success of a queue, in background tasks outside the job slots.

    "Every Nth" is counted in the store, per queue, across every sampling worker: the
    worker calls `sample` inside the transaction that records its successes and `judge`
    with what it returned once that committed, and `drain` on shutdown, which waits
    (bounded) for the judges still running. A worker killed between the two loses the
    judging of its sampled jobs (at most once, never twice); `qa run` can judge them.
    """

    def __init__(self, db: Store, every: int, judges: Sequence[str]) -> None:
        self.db = db
        self.every = every
        self.judges = tuple(judges)
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: Any = None
        self._limit = asyncio.Semaphore(WORKER_QA_CONCURRENCY)

    def sample(self, tx: Tx, succeeded: Sequence[int]) -> list[int]:
        """Number these just-recorded successes in their queues; the ids to judge."""
        numbers = tx.qa.number_qa_successes(succeeded)
        pairs = zip(succeeded, numbers, strict=True)
        return [job_id for job_id, n in pairs if should_sample(n, self.every)]

    def judge(self, job_ids: Iterable[int]) -> None:
        """Score sampled jobs in the background (call after their transaction committed)."""
        for job_id in job_ids:
            task = asyncio.create_task(self._score(job_id), name=f"qa-{job_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _score(self, job_id: int) -> None:
        try:
            async with self._limit:
                await self._score_now(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # QA must never take the worker down
            print(f"batchdash worker: QA of job {job_id} failed: {exc}", file=sys.stderr)

    async def _score_now(self, job_id: int) -> None:
        work = await self.db.read(lambda tx: _plan(tx, [job_id], self.judges, False))
        if not work.pairs:
            return
        if self._client is None:
            try:
                self._client = open_client()
            except Exception as exc:  # no key: record why, for every judge
                await self._save([JudgeCall(job_id, j).error(str(exc)) for j in self.judges])
                return
        results = await asyncio.gather(
            *(judge_job(self._client, job, judge, rubric) for job, judge, rubric in work.pairs)
        )
        await self._save(results)

    async def _save(self, results: Sequence[QAResult]) -> None:
        await self.db.write(partial(_store_verdicts, results=results, replace=False))

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for running judges, cancel the rest, close."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in set(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.close()


# --------------------------------------------------------------------------- QA as a remote batch

#: Batch metadata key that marks a QA batch; its value says whether verdicts replace scores.
QA_BATCH_META = "batchdash_qa"
_CHAT_URL = "/v1/chat/completions"
_QA_CUSTOM_ID = re.compile(r"qa-(\d+)-")


def qa_dir(db_path: Path) -> Path:
    """Where QA batch input files are kept (beside the database, for resubmission)."""
    return db_path.parent / f"{db_path.name}.qa"


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
        for page in _pages(job_ids, 500):
            work = _plan(tx, page, judges, rescore)
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
                line = {
                    "custom_id": line_id,
                    "method": "POST",
                    "url": _CHAT_URL,
                    "body": judge_request(job, judge, rubric),
                }
                outputs[group].write(json.dumps(line, ensure_ascii=False) + "\n")
                files.lines += 1
    return files


async def submit_batches(
    db: Store, job_ids: Sequence[int], judges: Sequence[str], *, rescore: bool
) -> tuple[list[int], BatchFiles]:
    """Submit judge requests as remote batches into `qa:<queue>`; (local batch ids, files).

    Verdicts are stored by `collect_batches` once the sync cycle has ingested the results.
    """
    get_provider(DEFAULT_PROVIDER).check_ready()  # no key: fail before writing any file
    folder = qa_dir(db.path)
    plan = partial(write_batch_requests, job_ids=job_ids, judges=judges, rescore=rescore)
    files = await db.read(partial(plan, folder=folder))
    ids: list[int] = []
    for (queue, _), path in sorted(files.paths.items()):
        ids += await remote.submit_file(
            db,
            path,
            queue=QA_QUEUE_PREFIX + queue,
            endpoint=_CHAT_URL,
            metadata={QA_BATCH_META: "rescore" if rescore else "keep"},
        )
    return ids, files


def _batch_verdict(job: Job, batch_id: int) -> QAResult | None:
    """The verdict one QA batch line holds, None when it is not a settled QA line."""
    match = _QA_CUSTOM_ID.match(job.key)
    body = job.payload.get("body") if isinstance(job.payload, dict) else None
    if match is None or not isinstance(body, dict) or job.status not in TERMINAL_JOB_STATUSES:
        return None
    call = JudgeCall(int(match[1]), str(body.get("model")), batch=True, batch_id=batch_id)
    if job.status == JobStatus.SUCCEEDED:
        return call.verdict(job.result, request_dimensions(body))
    raw = None if job.result is None else json.dumps(job.result, ensure_ascii=False)
    return call.error(f"judge batch line {job.error_kind or job.status}: {job.error}", raw)


def _store_verdicts(tx: Tx, results: Sequence[QAResult], replace: bool) -> tuple[int, int]:
    """Save verdicts of jobs that still exist; (scored, errors) actually saved."""
    alive = tx.jobs.existing_job_ids([r.job_id for r in results])
    scored = errors = 0
    for result in results:
        if result.job_id in alive and tx.qa.save_qa_result(result, replace=replace):
            scored += result.error is None
            errors += result.error is not None
    return scored, errors


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
            saved = await db.write(partial(_store_verdicts, results=results, replace=replace))
            scored, errors = scored + saved[0], errors + saved[1]
        detail = f"{scored} verdicts, {errors} QA errors"
        await db.write(partial(_mark_collected, batch=batch, detail=detail, now=time.time()))
        done += 1
    return done
