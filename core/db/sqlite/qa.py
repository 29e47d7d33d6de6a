"""QA results: judge scores, sampling, summaries."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from batchdash.core.db.qashared import (
    results_for_job,
    sample_sql,
    save_verdict,
    summarize,
)
from batchdash.core.db.sqlshared import Row, _where
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, JobFilter
from batchdash.core.qa_models import QAResult, QASummary


class SqliteQA:
    """QA results on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _query(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def qa_results_for_job(self, job_id: int) -> list[QAResult]:
        """Every judge's verdict on one job, with its per-dimension scores."""
        return results_for_job(self._query, job_id, "?")

    def qa_summary(self, *, queue: str | None = None, worst: int = 10) -> QASummary:
        """Aggregates over QA results, computed in SQL (optionally for one queue)."""
        return summarize(self._query, queue, worst, "?", "CAST(round(q.overall) AS INTEGER)")

    def save_qa_result(self, result: QAResult, *, replace: bool) -> bool:
        """Store a verdict with its scores and a timeline event; False when it was skipped.

        A (job, judge) pair that already has scores keeps them unless `replace` (`--rescore`);
        an earlier error row is always replaced, since an error is not a score.
        """
        return save_verdict(self._query, result, replace, "?")

    def qa_sample_ids(
        self,
        flt: JobFilter,
        *,
        limit: int | None = None,
        fraction: float | None = None,
        skip_queue_prefix: str | None = None,
    ) -> list[int]:
        """Ids of the matching jobs to judge: a deterministic sample, the same on every rerun.

        `limit` takes the first N in hash order, `fraction` those whose hash falls in the
        lowest share of the range (a larger sample always contains a smaller one). Queues
        starting with `skip_queue_prefix` (the QA batches' own queues) are left out unless the
        filter names queues.
        """
        sql, params = sample_sql(flt, limit, fraction, skip_queue_prefix, mark="?", like="LIKE")
        return [r[0] for r in self._conn.execute(sql, params)]

    def number_qa_successes(self, job_ids: Sequence[int]) -> list[int]:
        """Count these successes in their queues' QA tallies; each one's number, in order.

        Run in the transaction that records the successes, so the numbers are unique and
        gap-free per queue however many workers (on however many hosts) record them.
        """
        numbers: list[int] = []
        for job_id in job_ids:
            row = self._conn.execute(
                "INSERT INTO qa_success_counts (queue, succeeded) "
                "SELECT queue, 1 FROM jobs WHERE id = ? "
                "ON CONFLICT (queue) DO UPDATE SET succeeded = succeeded + 1 RETURNING succeeded",
                (job_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"unknown job {job_id}")
            numbers.append(row["succeeded"])
        return numbers

    def qa_scored_pairs(
        self, job_ids: Sequence[int], judges: Sequence[str]
    ) -> set[tuple[int, str]]:
        """The (job, judge) pairs among these that already have scores (not just an error)."""
        if not job_ids or not judges:
            return set()
        rows = self._conn.execute(
            f"SELECT job_id, judge FROM qa_results WHERE error IS NULL "
            f"AND job_id IN ({','.join('?' * len(job_ids))}) "
            f"AND judge IN ({','.join('?' * len(judges))})",
            [*job_ids, *judges],
        )
        return {(r["job_id"], r["judge"]) for r in rows}

    def qa_dimensions(self) -> list[str]:
        """Every dimension any judge has scored, sorted (the columns of a QA export)."""
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT dimension FROM qa_scores ORDER BY 1")
        ]

    def iter_qa_rows(self, flt: JobFilter = ALL_JOBS) -> Iterator[dict[str, Any]]:
        """QA results of the matching jobs, one dict per (job, judge), streamed row by row."""
        where, params = _where(flt)
        rows = self._conn.execute(
            "SELECT q.job_id, j.key, j.queue, q.judge, q.overall, q.comment, q.error, q.raw, "
            "q.input_tokens, q.output_tokens, q.cost, q.batch_id, q.created_at, "
            "(SELECT json_group_object(s.dimension, s.score) FROM qa_scores s "
            "WHERE s.result_id = q.id) AS scores "
            f"FROM qa_results q JOIN jobs j ON j.id = q.job_id WHERE {where} "
            "ORDER BY q.job_id, q.judge",
            params,
        )
        for row in rows:
            data = dict(row)
            data["scores"] = json.loads(data["scores"])
            yield data
