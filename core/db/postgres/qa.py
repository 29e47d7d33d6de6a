"""PostgreSQL repository: PgQA, QA verdicts (see `QAResults` in core/db/ports.py).

The SQL both back ends share lives in `core/db/qashared.py`, so summaries and samples are
the same figures on either. Verdict times are the caller's `created_at` (a record of when
the judge answered, not a lease), so no server clock is involved here. Success numbers are
taken with one upsert over the queues involved, row-locked in queue order, so workers on
any number of hosts number a queue's successes without gaps or repeats.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batchdash.core.db.qashared import (
    results_for_job,
    sample_sql,
    save_verdict,
    success_numbers,
    summarize,
)
from batchdash.core.db.sqlshared import Row, _where
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, JobFilter
from batchdash.core.qa_models import QAResult, QASummary

if TYPE_CHECKING:
    import psycopg

#: `round` of a double rounds half to even on PostgreSQL; of a numeric, half away from
#: zero like SQLite's, so the distribution's buckets match.
_BUCKET = "round(q.overall::numeric)::integer"


class PgQA:
    """The qa repository on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _query(self, sql: str, params: Sequence[Any]) -> list[Row]:
        cursor = self._conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def qa_results_for_job(self, job_id: int) -> list[QAResult]:
        """Every judge's verdict on one job, with its per-dimension scores."""
        return results_for_job(self._query, job_id, "%s")

    def qa_summary(self, *, queue: str | None = None, worst: int = 10) -> QASummary:
        """Aggregates over QA results, computed in SQL (optionally for one queue)."""
        return summarize(self._query, queue, worst, "%s", _BUCKET, results_have_jobs=True)

    def save_qa_result(self, result: QAResult, *, replace: bool) -> bool:
        """Store a verdict with its scores and a timeline event; False when it was skipped."""
        return save_verdict(self._query, result, replace, "%s")

    def qa_sample_ids(
        self,
        flt: JobFilter,
        *,
        limit: int | None = None,
        fraction: float | None = None,
        skip_queue_prefix: str | None = None,
    ) -> list[int]:
        """Ids of the matching jobs to judge: the same deterministic sample as SQLite's."""
        sql, params = sample_sql(flt, limit, fraction, skip_queue_prefix, mark="%s", like="ILIKE")
        return [r["id"] for r in self._query(sql, params)]

    def number_qa_successes(self, job_ids: Sequence[int]) -> list[int]:
        """Count these successes in their queues' QA tallies; each one's number, in order.

        One upsert adds each queue's count and returns its new tally: the row lock it takes
        holds until this transaction ends, so a concurrent worker's numbers follow ours.
        """
        if not job_ids:
            return []
        rows = self._query("SELECT id, queue FROM jobs WHERE id = ANY(%s)", (list(job_ids),))
        queue_of = {r["id"]: r["queue"] for r in rows}
        missing = [i for i in job_ids if i not in queue_of]
        if missing:
            raise NotFoundError(f"unknown job {missing[0]}")
        queues = [queue_of[i] for i in job_ids]
        added = sorted(Counter(queues).items())
        tallies = self._query(
            "INSERT INTO qa_success_counts AS c (queue, succeeded) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) ORDER BY 1 "
            "ON CONFLICT (queue) DO UPDATE SET succeeded = c.succeeded + excluded.succeeded "
            "RETURNING queue, succeeded",
            ([q for q, _ in added], [n for _, n in added]),
        )
        return success_numbers(queues, {r["queue"]: int(r["succeeded"]) for r in tallies})

    def qa_scored_pairs(
        self, job_ids: Sequence[int], judges: Sequence[str]
    ) -> set[tuple[int, str]]:
        """The (job, judge) pairs among these that already have scores (not just an error)."""
        if not job_ids or not judges:
            return set()
        rows = self._query(
            "SELECT job_id, judge FROM qa_results WHERE error IS NULL "
            "AND job_id = ANY(%s) AND judge = ANY(%s)",
            (list(job_ids), list(judges)),
        )
        return {(r["job_id"], r["judge"]) for r in rows}

    def qa_dimensions(self) -> list[str]:
        """Every dimension any judge has scored, sorted (the columns of a QA export)."""
        rows = self._query("SELECT DISTINCT dimension FROM qa_scores ORDER BY 1", ())
        return [r["dimension"] for r in rows]

    def iter_qa_rows(self, flt: JobFilter = ALL_JOBS) -> Iterator[dict[str, Any]]:
        """QA results of the matching jobs, one dict per (job, judge), streamed row by row.

        Scores come as JSON text (as SQLite's `json_group_object` gives them) and are read
        back as floats, the type of the column, whatever digits the server wrote.
        """
        where, params = _where(flt, mark="%s", like="ILIKE")
        rows = self._conn.cursor().stream(
            "SELECT q.job_id, j.key, j.queue, q.judge, q.overall, q.comment, q.error, q.raw, "
            "q.input_tokens, q.output_tokens, q.cost, q.batch_id, q.created_at, "
            "(SELECT json_object_agg(s.dimension, s.score)::text FROM qa_scores s "
            "WHERE s.result_id = q.id) AS scores "
            f"FROM qa_results q JOIN jobs j ON j.id = q.job_id WHERE {where} "
            "ORDER BY q.job_id, q.judge",
            params,
        )
        for row in rows:
            data = dict(row)
            scores = json.loads(data["scores"] or "{}")
            data["scores"] = {d: float(v) for d, v in scores.items()}
            yield data
