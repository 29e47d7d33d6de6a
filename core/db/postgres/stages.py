"""PostgreSQL repository: PgStages (shared SQL in `core/db/sqlstages.py`), with the duration
percentiles computed by the server (`percentile_cont`) in the statement that counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchdash.core.db.sqlshared import _build, pg_sql, sql_literal
from batchdash.core.db.sqlstages import SqlStages, stats_sql
from batchdash.core.stage_records import StageStat, StageStatus

if TYPE_CHECKING:
    import psycopg

_FINISHED = f"FILTER (WHERE status = {sql_literal(StageStatus.FINISHED)})"
_PERCENTILES = (
    f", percentile_cont(0.5) WITHIN GROUP (ORDER BY duration) {_FINISHED} AS p50"
    f", percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) {_FINISHED} AS p95"
)


class PgStages(SqlStages):
    """Stage runs and progress on one psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, pg_sql)

    def stage_stats(self, queue: str | None = None) -> list[StageStat]:
        """Per queue and stage: runs, failures, and p50/p95 of the finished runs' durations."""
        params = [] if queue is None else [queue]
        rows = self._conn.execute(pg_sql(stats_sql(queue, _PERCENTILES)), params)
        return [_build(StageStat, row) for row in rows]
