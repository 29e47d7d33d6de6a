"""QA results: judge scores, sampling, summaries."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from batchdash.core.db.sqlshared import (
    _where,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import (
    ALL_JOBS,
    DISAGREEMENT_THRESHOLD,
    JobFilter,
    QAResult,
    QAStat,
    QASummary,
)

#: Fibonacci hash of a job id (odd multiplier, so a bijection on 32-bit ids): QA samples
#: take jobs in this order, spread over the whole id range and the same on every rerun.
_QA_SAMPLE_HASH = "((j.id * 2654435761) % 4294967296)"


_QA_HASH_RANGE = 2**32


class SqliteQA:
    """QA results on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def qa_results_for_job(self, job_id: int) -> list[QAResult]:
        """Every judge's verdict on one job, with its per-dimension scores."""
        results = []
        for r in self._conn.execute(
            "SELECT * FROM qa_results WHERE job_id = ? ORDER BY judge", (job_id,)
        ).fetchall():
            scores = {
                s["dimension"]: s["score"]
                for s in self._conn.execute(
                    "SELECT dimension, score FROM qa_scores WHERE result_id = ? ORDER BY dimension",
                    (r["id"],),
                )
            }
            results.append(
                QAResult(
                    id=r["id"],
                    job_id=r["job_id"],
                    judge=r["judge"],
                    scores=scores,
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

    def qa_summary(self, *, queue: str | None = None, worst: int = 10) -> QASummary:
        """Aggregates over QA results, computed in SQL (optionally for one queue)."""
        scope = "JOIN jobs j ON j.id = q.job_id WHERE (? IS NULL OR j.queue = ?)"
        params = (queue, queue)
        head = self._conn.execute(
            f"SELECT count(*) AS n, coalesce(sum(q.error IS NOT NULL), 0) AS errors "
            f"FROM qa_results q {scope}",
            params,
        ).fetchone()
        stats = [
            QAStat(r["judge"], r["dimension"], r["n"], r["mean"], r["lo"], r["hi"])
            for r in self._conn.execute(
                f"SELECT q.judge, s.dimension, count(*) AS n, avg(s.score) AS mean, "
                f"min(s.score) AS lo, max(s.score) AS hi "
                f"FROM qa_scores s JOIN qa_results q ON q.id = s.result_id {scope} "
                f"GROUP BY q.judge, s.dimension ORDER BY q.judge, s.dimension",
                params,
            )
        ]
        distribution = {
            int(r["bucket"]): r["n"]
            for r in self._conn.execute(
                f"SELECT CAST(round(q.overall) AS INTEGER) AS bucket, count(*) AS n "
                f"FROM qa_results q {scope} AND q.overall IS NOT NULL GROUP BY bucket",
                params,
            )
        }
        worst_rows = [
            (r["job_id"], r["key"], r["judge"], r["overall"])
            for r in self._conn.execute(
                f"SELECT q.job_id, j.key, q.judge, q.overall FROM qa_results q {scope} "
                f"AND q.overall IS NOT NULL ORDER BY q.overall, q.job_id LIMIT ?",
                (*params, worst),
            )
        ]
        disagreements = [
            (r["job_id"], r["key"], r["lo"], r["hi"])
            for r in self._conn.execute(
                f"SELECT q.job_id, j.key, min(q.overall) AS lo, max(q.overall) AS hi "
                f"FROM qa_results q {scope} AND q.overall IS NOT NULL GROUP BY q.job_id "
                f"HAVING max(q.overall) - min(q.overall) >= ? ORDER BY hi - lo DESC, q.job_id "
                f"LIMIT ?",
                (*params, DISAGREEMENT_THRESHOLD, worst),
            )
        ]
        return QASummary(
            results=head["n"] - head["errors"],
            errors=head["errors"],
            stats=stats,
            distribution=distribution,
            worst=worst_rows,
            disagreements=disagreements,
        )

    def save_qa_result(self, result: QAResult, *, replace: bool) -> bool:
        """Store a verdict with its scores and a timeline event; False when it was skipped.

        A (job, judge) pair that already has scores keeps them unless `replace` (`--rescore`);
        an earlier error row is always replaced, since an error is not a score.
        """
        row = self._conn.execute(
            "INSERT INTO qa_results (job_id, judge, overall, comment, error, raw, input_tokens, "
            "output_tokens, cost, batch_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, judge) DO UPDATE SET overall = excluded.overall, "
            "comment = excluded.comment, error = excluded.error, raw = excluded.raw, "
            "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
            "cost = excluded.cost, batch_id = excluded.batch_id, created_at = excluded.created_at "
            "WHERE ? OR qa_results.error IS NOT NULL RETURNING id",
            (
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
            ),
        ).fetchone()
        if row is None:
            return False
        self._conn.execute("DELETE FROM qa_scores WHERE result_id = ?", (row["id"],))
        self._conn.executemany(
            "INSERT INTO qa_scores (result_id, dimension, score) VALUES (?, ?, ?)",
            ((row["id"], dimension, score) for dimension, score in result.scores.items()),
        )
        if result.error is None:
            kind, detail = "qa_scored", f"{result.judge}: overall {result.overall:g}"
        else:
            kind, detail = "qa_error", f"{result.judge}: {result.error[:200]}"
        self._conn.execute(
            "INSERT INTO events (at, kind, job_id, batch_id, queue, detail) "
            "SELECT ?, ?, id, ?, queue, ? FROM jobs WHERE id = ?",
            (result.created_at, kind, result.batch_id, detail, result.job_id),
        )
        return True

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
        where, params = _where(flt)
        sql = f"SELECT j.id FROM jobs j WHERE {where}"
        if skip_queue_prefix and not flt.queues:
            sql += " AND substr(j.queue, 1, ?) != ?"
            params += [len(skip_queue_prefix), skip_queue_prefix]
        if fraction is not None:
            sql += f" AND {_QA_SAMPLE_HASH} < ?"
            params.append(fraction * _QA_HASH_RANGE)
        if limit is not None:
            sql += f" ORDER BY {_QA_SAMPLE_HASH} LIMIT ?"
            params.append(limit)
        else:
            sql += " ORDER BY j.id"
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
