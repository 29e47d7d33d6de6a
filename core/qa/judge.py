"""One judge call: the request a judge sees, the call itself, and its verdict as a QA row.

The judge sees the job's input (the request's messages, or the payload as JSON) and its
output (the reply's text, or the result as JSON), both cut to a sane size. A verdict that
is not valid JSON, misses a dimension or has a score out of range becomes a QA error with
the judge's raw text; so does a failed call (429/5xx after the SDK's retries, timeouts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchdash.core.endpoints import resolve
from batchdash.core.models import Job
from batchdash.core.pricing import price_of
from batchdash.core.providers import _anthropic, _openai
from batchdash.core.qa.rubric import (
    DEFAULT_DIMENSIONS,
    MAX_COMMENT_CHARS,
    MAX_SCORE,
    MIN_SCORE,
    Rubric,
)
from batchdash.core.qa_models import QAResult

#: Input and output are each cut to this many characters before the judge sees them.
MAX_TEXT_CHARS = 12_000
#: Raw judge text kept with an error row (enough to see what went wrong).
MAX_RAW_CHARS = 4_000
#: The SDK retries 429/5xx/timeouts this many times, honouring retry-after.
JUDGE_RETRIES = 3
#: Most tokens a Claude judge may answer with (the Messages API needs a bound).
CLAUDE_MAX_TOKENS = 1024
#: Seconds one judge call may take.
JUDGE_TIMEOUT = 120.0
#: How the error of a judge call that got no answer starts.
CALL_FAILED = "judge call failed: "
#: ... and of one whose API key was refused: `qa run` makes no further calls then.
KEY_REFUSED = f"{CALL_FAILED}HTTP 401:"


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


def request_body(payload: Any) -> Any:
    """The request of a job: `body` of an OpenAI line, `params` of an Anthropic one."""
    if not isinstance(payload, dict):
        return None
    return payload.get("body", payload.get("params"))


def job_input_text(payload: Any) -> str:
    """What the job was asked: a request's messages, else the payload as JSON."""
    body = request_body(payload)
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list):
        return "\n\n".join(
            f"[{m.get('role', '?')}] {_content_text(m.get('content'))}"
            if isinstance(m, dict)
            else str(m)
            for m in messages
        )
    return json.dumps(payload, ensure_ascii=False, indent=1)


def reply_text(response: Any) -> str | None:
    """The text of a chat completion or of a Claude message, if it is one."""
    text = _anthropic.message_text(response)
    return text if text is not None else _chat_text(response)


def _chat_text(response: Any) -> str | None:
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
    text = reply_text(result)
    return text if text is not None else json.dumps(result, ensure_ascii=False, indent=1)


def is_claude(judge: str) -> bool:
    """True for a judge that is a Claude model (asked through Anthropic's Messages API)."""
    return judge.startswith("claude")


def judge_request(job: Job, judge: str, rubric: Rubric) -> dict[str, Any]:
    """The request that asks `judge` to score `job` (also a batch line's body or params):
    Messages API params for a Claude judge, a chat-completions body for the others."""
    user = (
        f"INPUT:\n<<<\n{_cut(job_input_text(job.payload))}\n>>>\n\n"
        f"OUTPUT:\n<<<\n{_cut(job_output_text(job.result))}\n>>>"
    )
    if is_claude(judge):
        return {
            "model": judge,
            "max_tokens": CLAUDE_MAX_TOKENS,
            "system": rubric.system_prompt(),
            "messages": [{"role": "user", "content": user}],
            "output_config": {"format": {"type": "json_schema", "schema": rubric.schema()}},
        }
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
        if "output_config" in body:
            required = body["output_config"]["format"]["schema"]["required"]
        else:
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
        """Turn a chat completion or a Claude message (a JSON dict) into scores, or into
        an error row."""
        tokens = _openai.usage_tokens(response)
        text = reply_text(response)
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


class JudgeClients:
    """The clients judge calls need: OpenAI-compatible, and Anthropic for Claude judges.

    Unlike job calls, judge calls let the SDK retry 429/5xx/529 with backoff honouring
    retry-after: there is no queue to retry them. Close with `await clients.close()`.
    """

    def __init__(self, judges: Sequence[str], endpoint_name: str | None = None) -> None:
        # Opened now, so a missing key (or an endpoint of the wrong provider) fails before
        # any job is read.
        self.openai: Any = None
        self.anthropic: Any = None
        if any(is_claude(j) for j in judges):
            self.anthropic = _anthropic.new_client(
                retries=JUDGE_RETRIES,
                timeout=JUDGE_TIMEOUT,
                endpoint=resolve(endpoint_name, "anthropic"),
            )
        if not all(is_claude(j) for j in judges):
            self.openai = _openai.new_client(
                retries=JUDGE_RETRIES,
                timeout=JUDGE_TIMEOUT,
                endpoint=resolve(endpoint_name, "openai"),
            )

    async def close(self) -> None:
        """Close every client opened."""
        for client in (self.openai, self.anthropic):
            if client is not None:
                await client.close()


def open_client(judges: Sequence[str], endpoint_name: str | None = None) -> JudgeClients:
    """Clients for judge calls by these judges at the named endpoint (default: each
    provider's unnamed one); MissingKeyError when a key is not set."""
    return JudgeClients(judges, endpoint_name)


async def judge_job(clients: JudgeClients, job: Job, judge: str, rubric: Rubric) -> QAResult:
    """Ask one judge about one job; any failure becomes an error row, never an exception."""
    call = JudgeCall(job.id, judge)
    body = judge_request(job, judge, rubric)
    try:
        if is_claude(judge):
            reply = await clients.anthropic.messages.create(**body)
        else:
            reply = await clients.openai.chat.completions.create(**body)
    except Exception as exc:
        failure = _failure(exc)
        if failure is None:
            raise
        return call.error(f"{CALL_FAILED}{failure}")
    return call.verdict(reply.model_dump(mode="json"), rubric.dimensions)


def _failure(exc: Exception) -> str | None:
    """A failed judge call in one line; None for an exception that is not the SDK's."""
    if _anthropic.owns(exc):
        status = _anthropic.status_of(exc)
        if status is not None:
            return _anthropic.describe(exc)
        return f"{type(exc).__name__}: {exc}"
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {_api_message(exc)}"
    if isinstance(exc, openai.APIError):
        return f"{type(exc).__name__}: {exc}"
    return None


def _api_message(exc: Any) -> str:
    """The provider's own error message (the SDK's `message` prefixes the status again)."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message else str(exc.message)
