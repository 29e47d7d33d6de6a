"""QA verdicts' SQL and row mapping, shared by both back ends (like `sqlshared.py`).

Each back end passes its placeholder (`mark`) and a `Query` that runs one statement and
returns its rows; SQL here is the dialect SQLite and PostgreSQL both speak, so the two
stores compute the same summaries and pick the same samples from the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from batchdash.core.db.sqlshared import Row, _where
from batchdash.core.models import JobFilter
from batchdash.core.qa_models import DISAGREEMENT_THRESHOLD, QAResult, QAStat, QASummary

#: Runs one statement with its parameters and returns every row.
Query = Callable[[str, Sequence[Any]], Sequence[Row]]

#: Fibonacci hash of a job id (odd multiplier, so a bijection on 32-bit ids): QA samples
#: take jobs in this order, spread over the whole id range and the same on every rerun.
#: `& (2**32 - 1)` is `% 2**32` for positive ids, written so both back ends compute it
#: alike (no `%`, which psycopg would read as a placeholder; integer math on both).
QA_SAMPLE_HASH = "((j.id * 2654435761) & 4294967295)"
QA_HASH_RANGE = 2**32

#: The columns an upsert of a verdict writes, in the order of `verdict_params`.
_VERDICT_COLUMNS = (
    "job_id, judge, overall, comment, error, raw, input_tokens, output_tokens, cost, "
    "batch_id, created_at"
)


def _save_verdict_sql(mark: str) -> str:
    """Upsert one verdict, returning its id; a conflict replaces scores only when asked.

    The last parameter is 1 for `replace`; an earlier error row is always replaced.
    """
    marks = ", ".join([mark] * 11)
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in _VERDICT_COLUMNS.split(", ") if c not in {"job_id", "judge"}
    )
    return (
        f"INSERT INTO qa_results ({_VERDICT_COLUMNS}) VALUES ({marks}) "
        f"ON CONFLICT (job_id, judge) DO UPDATE SET {updates} "
        f"WHERE {mark} = 1 OR qa_results.error IS NOT NULL RETURNING id"
    )


def save_verdict(query: Query, result: QAResult, replace: bool, mark: str) -> bool:
    """Store a verdict with its scores and a timeline event; False when it was skipped.

    A (job, judge) pair that already has scores keeps them unless `replace` (`--rescore`);
    an earlier error row is always replaced, since an error is not a score.
    """
    params = (
        result.job_id,
        result.judge,
        result.overall,
        result.comment,
        result.error,
        result.raw,
        result.input_tokens,
        result.output_tokens,
        result.cost,
        result.batch_id,
        result.created_at,
        int(replace),
    )
    rows = query(_save_verdict_sql(mark), params)
    if not rows:
        return False
    result_id = rows[0]["id"]
    query(f"DELETE FROM qa_scores WHERE result_id = {mark}", (result_id,))
    if result.scores:
        values = ", ".join([f"({mark}, {mark}, {mark})"] * len(result.scores))
        flat = [v for d, score in result.scores.items() for v in (result_id, d, score)]
        query(f"INSERT INTO qa_scores (result_id, dimension, score) VALUES {values}", flat)
    if result.error is None:
        kind, detail = "qa_scored", f"{result.judge}: overall {result.overall:g}"
    else:
        kind, detail = "qa_error", f"{result.judge}: {result.error[:200]}"
    query(
        f"INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
        f"SELECT {mark}, {mark}, id, {mark}, queue, {mark} FROM jobs WHERE id = {mark}",
        (result.created_at, kind, result.batch_id, detail, result.job_id),
    )
    return True


def results_for_job(query: Query, job_id: int, mark: str) -> list[QAResult]:
    """Every judge's verdict on one job, with its per-dimension scores."""
    results = []
    for r in query(f"SELECT * FROM qa_results WHERE job_id = {mark} ORDER BY judge", (job_id,)):
        rows = query(
            f"SELECT dimension, score FROM qa_scores WHERE result_id = {mark} ORDER BY dimension",
            (r["id"],),
        )
        results.append(
            QAResult(
                id=r["id"],
                job_id=r["job_id"],
                judge=r["judge"],
                scores={s["dimension"]: s["score"] for s in rows},
                comment=r["comment"],
                error=r["error"],
                raw=r["raw"],
                input_tokens=r["input_tokens"],
                output_tokens=r["output_tokens"],
                cost=r["cost"],
                created_at=r["created_at"],
                batch_id=r["batch_id"],
            )
        )
    return results


def summarize(
    query: Query,
    queue: str | None,
    worst: int,
    mark: str,
    bucket: str,
    *,
    results_have_jobs: bool = False,
) -> QASummary:
    """Aggregates over QA results in SQL (optionally for one queue).

    `bucket` rounds `q.overall` half away from zero to an integer (SQLite's `round`; on
    PostgreSQL that is `round` of a numeric, since its double `round` goes to even).
    `results_have_jobs`: every verdict's job exists (an enforced foreign key), so a summary
    of every queue need not join jobs; only the few rows shown look their keys up (at 10M
    jobs the joins made a summary take 1.6 s on PostgreSQL instead of 0.2 s).
    """
    scope = "JOIN jobs j ON j.id = q.job_id WHERE 1 = 1"
    key, by_job = "j.key", "q.job_id, j.key"
    params: list[Any] = []
    if queue is not None:
        scope += f" AND j.queue = {mark}"
        params.append(queue)
    elif results_have_jobs:
        scope = "WHERE 1 = 1"
        key, by_job = "(SELECT j.key FROM jobs j WHERE j.id = q.job_id) AS key", "q.job_id"
    [head] = query(
        f"SELECT count(*) AS n, count(q.error) AS errors FROM qa_results q {scope}", params
    )
    stats = [
        QAStat(r["judge"], r["dimension"], int(r["n"]), r["mean"], r["lo"], r["hi"])
        for r in query(
            f"SELECT q.judge, s.dimension, count(*) AS n, avg(s.score) AS mean, "
            f"min(s.score) AS lo, max(s.score) AS hi "
            f"FROM qa_scores s JOIN qa_results q ON q.id = s.result_id {scope} "
            f"GROUP BY q.judge, s.dimension ORDER BY q.judge, s.dimension",
            params,
        )
    ]
    scored = f"{scope} AND q.overall IS NOT NULL"
    distribution = {
        int(r["bucket"]): int(r["n"])
        for r in query(
            f"SELECT {bucket} AS bucket, count(*) AS n FROM qa_results q {scored} GROUP BY 1",
            params,
        )
    }
    worst_rows = [
        (r["job_id"], r["key"], r["judge"], r["overall"])
        for r in query(
            f"SELECT q.job_id, {key}, q.judge, q.overall FROM qa_results q {scored} "
            f"ORDER BY q.overall, q.job_id LIMIT {mark}",
            [*params, worst],
        )
    ]
    disagreements = [
        (r["job_id"], r["key"], r["lo"], r["hi"])
        for r in query(
            f"SELECT q.job_id, {key}, min(q.overall) AS lo, max(q.overall) AS hi "
            f"FROM qa_results q {scored} GROUP BY {by_job} "
            f"HAVING max(q.overall) - min(q.overall) >= {mark} "
            f"ORDER BY max(q.overall) - min(q.overall) DESC, q.job_id LIMIT {mark}",
            [*params, DISAGREEMENT_THRESHOLD, worst],
        )
    ]
    n, errors = int(head["n"]), int(head["errors"])
    return QASummary(n - errors, errors, stats, distribution, worst_rows, disagreements)


def sample_sql(
    flt: JobFilter,
    limit: int | None,
    fraction: float | None,
    skip_queue_prefix: str | None,
    *,
    mark: str,
    like: str,
) -> tuple[str, list[Any]]:
    """The query for `qa_sample_ids` (see its docstring): ids in hash or id order."""
    where, params = _where(flt, mark, like)
    sql = f"SELECT j.id FROM jobs j WHERE {where}"
    if skip_queue_prefix and not flt.queues:
        sql += f" AND substr(j.queue, 1, {mark}) <> {mark}"
        params += [len(skip_queue_prefix), skip_queue_prefix]
    if fraction is not None:
        sql += f" AND {QA_SAMPLE_HASH} < {mark}"
        params.append(fraction * QA_HASH_RANGE)
    if limit is not None:
        sql += f" ORDER BY {QA_SAMPLE_HASH} LIMIT {mark}"
        params.append(limit)
    else:
        sql += " ORDER BY j.id"
    return sql, params


def success_numbers(job_queues: Sequence[str], tallies: dict[str, int]) -> list[int]:
    """Each success's number in its queue, in order, from the queues' tallies after adding.

    The jobs of one queue take the last `k` numbers of its tally, in the order given.
    """
    left = dict(tallies)
    for queue in job_queues:
        left[queue] -= 1
    numbers = []
    for queue in job_queues:
        left[queue] += 1
        numbers.append(left[queue])
    return numbers
