"""The stages repository, written once for both back ends (`tx.stages`, see `stage_ports`).

Like `sqlevents`, its SQL is the dialect SQLite and PostgreSQL share with `?` placeholders;
each back end hands in its connection and the placeholder converter. Only the duration
percentiles differ: PostgreSQL computes them in the statement (`percentile_cont`), SQLite,
which has no such aggregate, from a bounded read of the latest runs (`PERCENTILE_ROWS`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from batchdash.core.db.sqlevents import insert_events
from batchdash.core.db.sqlshared import SharedSqlRepository, _build, sql_literal
from batchdash.core.stage_records import (
    STAGE_EVENT_KIND,
    ProgressMark,
    StageMark,
    StageRun,
    StageStat,
    StageStatus,
)

_RUNNING_SQL = sql_literal(StageStatus.RUNNING)
_FINISHED_SQL = sql_literal(StageStatus.FINISHED)
_FAILED_SQL = sql_literal(StageStatus.FAILED)

#: A stage run's row: inserted when it starts, its end written over it. An ended run is
#: never written over: the heartbeat and the group commit each save what they took, and a
#: start must not undo an end that another transaction saved first.
_UPSERT = (
    "INSERT INTO job_stages (job_id, attempt, seq, queue, name, started_at, status, duration, "
    "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, attempt, seq) DO UPDATE "
    "SET status = excluded.status, duration = excluded.duration, error = excluded.error "
    f"WHERE job_stages.status = {_RUNNING_SQL}"
)

_PROGRESS = (
    "UPDATE jobs SET stage = ?, progress = ?, progress_note = ? WHERE id = ? AND claim_token = ?"
)

#: Finished runs whose durations SQLite's percentiles read (the latest jobs' first).
PERCENTILE_ROWS = 100_000


def stats_sql(queue: str | None, percentiles: str = "") -> str:
    """Runs and failures per (queue, stage), plus the back end's `percentiles` columns."""
    where = "AND queue = ?" if queue is not None else ""
    return (
        "SELECT queue, name, count(*) AS runs, "
        f"sum(CASE WHEN status = {_FAILED_SQL} THEN 1 ELSE 0 END) AS failed{percentiles} "
        f"FROM job_stages WHERE status <> {_RUNNING_SQL} {where} "
        "GROUP BY queue, name ORDER BY queue, name"
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted values, interpolated as PostgreSQL's `percentile_cont`."""
    if not values:
        return None
    pos = q * (len(values) - 1)
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def _stage_row(m: StageMark) -> tuple[Any, ...]:
    """The `_UPSERT` values of a mark."""
    return (
        m.job_id,
        m.attempt,
        m.seq,
        m.queue,
        m.name,
        m.started_at,
        m.status,
        m.duration,
        m.error,
    )


def _event_row(m: StageMark) -> tuple[Any, ...]:
    """A mark's `stage_*` event: a start's at the start, an end's at the end."""
    at = m.started_at + (m.duration or 0.0)
    return (at, STAGE_EVENT_KIND[m.status], m.job_id, None, m.queue, None, m.event_detail())


class SqlStages(SharedSqlRepository):
    """Stage runs and progress on one connection (sqlite3 or psycopg: both `execute` alike)."""

    def save(self, marks: Sequence[StageMark], progress: Sequence[ProgressMark]) -> None:
        """Record stage marks and progress whose claims still hold."""
        claims = {(m.job_id, m.token) for m in marks} | {(p.job_id, p.token) for p in progress}
        held = self._held(claims)
        marks = [m for m in marks if (m.job_id, m.token) in held]
        cur = self._conn.cursor()
        if marks:
            cur.executemany(
                self._sql(_UPSERT),
                [_stage_row(m) for m in marks],
            )
            insert_events(self._conn, self._sql, [_event_row(m) for m in marks])
        rows = [(p.stage, p.fraction, p.note, p.job_id, p.token) for p in progress]
        if rows:
            cur.executemany(self._sql(_PROGRESS), rows)

    def _held(self, claims: set[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which (job, token) claims are still the jobs' current ones (one statement; a
        worker's claims are at most its concurrency)."""
        if not claims:
            return set()
        ids = sorted({job_id for job_id, _ in claims})
        rows = self._conn.execute(
            self._sql(f"SELECT id, claim_token FROM jobs WHERE id IN ({','.join('?' * len(ids))})"),
            ids,
        )
        return claims & {(row["id"], row["claim_token"]) for row in rows}

    def job_stages(self, job_id: int) -> list[StageRun]:
        """Every stage run of a job, by attempt and order."""
        rows = self._conn.execute(
            self._sql("SELECT * FROM job_stages WHERE job_id = ? ORDER BY attempt, seq"), [job_id]
        )
        return [_build(StageRun, row) for row in rows]

    def stage_stats(self, queue: str | None = None) -> list[StageStat]:
        """Per queue and stage: runs, failures, and p50/p95 of the finished runs' durations."""
        params = [] if queue is None else [queue]
        counts = self._conn.execute(self._sql(stats_sql(queue)), params).fetchall()
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        where = "AND queue = ?" if queue is not None else ""
        for row in self._conn.execute(
            self._sql(
                f"SELECT queue, name, duration FROM job_stages WHERE status = {_FINISHED_SQL} "
                f"{where} ORDER BY job_id DESC LIMIT ?"
            ),
            [*params, PERCENTILE_ROWS],
        ):
            durations[(row["queue"], row["name"])].append(row["duration"])
        stats = []
        for row in counts:
            values = sorted(durations.get((row["queue"], row["name"]), []))
            stats.append(
                StageStat(
                    row["queue"],
                    row["name"],
                    row["runs"],
                    row["failed"],
                    percentile(values, 0.5),
                    percentile(values, 0.95),
                )
            )
        return stats
