"""`PgTx`: every PostgreSQL repository on one connection, each made on first use.

What `read` and `write` hand to their callable. Repositories (and their modules) load
lazily, as on SQLite: `--once` reads only a few of them and starts sooner without the rest.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from batchdash.core.db.postgres.batches import PgBatches
    from batchdash.core.db.postgres.events import PgEvents
    from batchdash.core.db.postgres.items import PgBatchItems
    from batchdash.core.db.postgres.jobs import PgJobs
    from batchdash.core.db.postgres.limits import PgLimits
    from batchdash.core.db.postgres.notices import PgNotices
    from batchdash.core.db.postgres.qa import PgQA
    from batchdash.core.db.postgres.queues import PgQueues
    from batchdash.core.db.postgres.stages import PgStages
    from batchdash.core.db.postgres.stats import PgStats
    from batchdash.core.db.postgres.workers import PgWorkers
    from batchdash.core.db.sqlprune import SqlPrune
    from batchdash.core.db.sqltags import SqlTags


class PgTx:
    """Every repository on one connection; what `read` and `write` hand to their callable."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @cached_property
    def jobs(self) -> PgJobs:
        """The jobs repository."""
        from batchdash.core.db.postgres.jobs import PgJobs

        return PgJobs(self._conn)

    @cached_property
    def queues(self) -> PgQueues:
        """The queues repository."""
        from batchdash.core.db.postgres.queues import PgQueues

        return PgQueues(self._conn)

    @cached_property
    def events(self) -> PgEvents:
        """The events repository."""
        from batchdash.core.db.postgres.events import PgEvents

        return PgEvents(self._conn)

    @cached_property
    def workers(self) -> PgWorkers:
        """The workers repository."""
        from batchdash.core.db.postgres.workers import PgWorkers

        return PgWorkers(self._conn)

    @cached_property
    def batches(self) -> PgBatches:
        """The batches repository."""
        from batchdash.core.db.postgres.batches import PgBatches

        return PgBatches(self._conn)

    @cached_property
    def items(self) -> PgBatchItems:
        """The batch items repository."""
        from batchdash.core.db.postgres.items import PgBatchItems

        return PgBatchItems(self._conn)

    @cached_property
    def qa(self) -> PgQA:
        """The QA verdicts repository."""
        from batchdash.core.db.postgres.qa import PgQA

        return PgQA(self._conn)

    @cached_property
    def stats(self) -> PgStats:
        """The dashboard figures repository."""
        from batchdash.core.db.postgres.stats import PgStats

        return PgStats(self._conn)

    @cached_property
    def stages(self) -> PgStages:
        """The job stages repository."""
        from batchdash.core.db.postgres.stages import PgStages

        return PgStages(self._conn)

    @cached_property
    def tags(self) -> SqlTags:
        """The tags repository (shared SQL, `core/db/sqltags.py`)."""
        from batchdash.core.db.sqlshared import pg_sql
        from batchdash.core.db.sqltags import SqlTags

        by_key = "SELECT s.job_id FROM job_search s WHERE s.queue = ? AND s.key = v.column2"
        return SqlTags(self._conn, pg_sql, by_key)

    @cached_property
    def prune(self) -> SqlPrune:
        """The pruning repository (shared SQL, `core/db/sqlprune.py`)."""
        from batchdash.core.db.sqlprune import SqlPrune
        from batchdash.core.db.sqlshared import pg_sql

        # Picked jobs stay locked until deleted: a concurrent retry waits or is skipped.
        return SqlPrune(self._conn, pg_sql, lock=" FOR UPDATE SKIP LOCKED")

    @cached_property
    def limits(self) -> PgLimits:
        """The rate-limits repository (it reads the server clock through `stats`)."""
        from batchdash.core.db.postgres.limits import PgLimits

        return PgLimits(self._conn, self.stats)

    @cached_property
    def notices(self) -> PgNotices:
        """The delivered-notices repository."""
        from batchdash.core.db.postgres.notices import PgNotices

        return PgNotices(self._conn)
