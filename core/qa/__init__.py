"""Judge-model scoring: rubrics, judge requests, parsing verdicts, sampling and QA runs.

A judge is a chat model asked, through the OpenAI-compatible chat API with a JSON-schema
response format (a `claude-…` judge: Anthropic's Messages API with a JSON-schema output
format), for integer scores 1–10 on each rubric dimension (always `overall`) plus
a short comment (`rubric`, `judge`). A verdict that is not valid JSON, misses a dimension
or has a score out of range is stored as a QA error with the judge's raw text — never a
crash, never a made-up score. Failed calls (429/5xx after the SDK's retries, timeouts, no
API key) are stored as errors too.

Scoring happens in three places: `batchdash qa run` (`run_qa` over a deterministic
sample, `sampling`), workers scoring every Nth success of a queue (`WorkerQA`), and QA as
a remote batch (`submit_batches` / `collect_batches`), billed at the batch rate.
"""

from batchdash.core.models import QA_QUEUE_PREFIX
from batchdash.core.qa.batch import BatchFiles, collect_batches, custom_id, submit_batches
from batchdash.core.qa.judge import (
    MAX_TEXT_CHARS,
    JudgeCall,
    job_input_text,
    job_output_text,
    judge_request,
    open_client,
    parse_verdict,
    request_dimensions,
)
from batchdash.core.qa.rubric import (
    DEFAULT_DIMENSIONS,
    DEFAULT_RUBRIC,
    MAX_SCORE,
    MIN_SCORE,
    Rubric,
    RubricError,
    queue_rubric,
)
from batchdash.core.qa.run import RunStats, run_qa
from batchdash.core.qa.sampling import (
    DEFAULT_JUDGE,
    Sample,
    parse_judges,
    parse_sample,
    sample_ids,
    should_sample,
)
from batchdash.core.qa.worker_qa import WorkerQA

__all__ = [
    "DEFAULT_DIMENSIONS",
    "DEFAULT_JUDGE",
    "DEFAULT_RUBRIC",
    "MAX_SCORE",
    "MAX_TEXT_CHARS",
    "MIN_SCORE",
    "QA_QUEUE_PREFIX",
    "BatchFiles",
    "JudgeCall",
    "Rubric",
    "RubricError",
    "RunStats",
    "Sample",
    "WorkerQA",
    "collect_batches",
    "custom_id",
    "job_input_text",
    "job_output_text",
    "judge_request",
    "open_client",
    "parse_judges",
    "parse_sample",
    "parse_verdict",
    "queue_rubric",
    "request_dimensions",
    "run_qa",
    "sample_ids",
    "should_sample",
    "submit_batches",
]
