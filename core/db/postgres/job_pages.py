"""Job reads on PostgreSQL: pages in any order, counts, one job, its texts (the read half
of `PgJobs`, the same behaviour as `core/db/sqlite/job_pages.py`).

Text filters use ILIKE (SQLite's LIKE already ignores case). Every page order is over
NOT NULL columns, and the text columns it sorts on are COLLATE "C", so both back ends put
the same rows on the same page. `next_run_after` compares with the server's clock, the one
that decides whether a job is runnable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from batchdash.core.db.ports import Page
from batchdash.core.db.sqlshared import (
    _BY_UPDATED,
    _JOB_TEXTS,
    _JOBS_WITH_BODIES,
    _JOBS_WITHOUT_BODIES,
    JOB_PENDING_SQL,
    LIST_ERROR_CHARS,
    IdBound,
    _build,
    _counted,
    _id_bound,
    _job,
    _loads,
    _merged_by_status,
    _order_sql,
    _past,
    _where,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import ALL_JOBS, Job, JobFilter

if TYPE_CHECKING:
    import psycopg


def _value(
    conn: psycopg.Connection[Any], sql: str, params: Any = None, *, prepare: bool | None = None
) -> Any:
    """The column `v` of the one row an aggregate query returns (`prepare`: as psycopg's)."""
    row = conn.execute(sql, params, prepare=prepare).fetchone()
    return None if row is None else row["v"]


def _pg_where(flt: JobFilter, ids: IdBound | None = None) -> tuple[str, list[Any]]:
    """A job filter's WHERE clause in psycopg's placeholders, with ILIKE (`ids`: a keyset
    page's id range, repeated inside the text lookups)."""
    return _where(flt, mark="%s", like="ILIKE", ids=ids)


def _prepare(keyset: bool) -> bool | None:
    """psycopg's `prepare` for a read: never for one bounded by a keyset page's row.

    psycopg prepares a statement it has run five times, and the server may then plan it
    once for any parameters. That generic plan cannot see that a page's bound (`j.id > $4`)
    leaves a few hundred thousand of 10M rows: under a text filter it counted the 1,000 rows
    in front of page 51 in 1.6 s, where the plan for the actual bound takes 26 ms. Planning
    each such read costs a few milliseconds.
    """
    return False if keyset else None


#: The FROM of a page sorted by key: jobs has no (queue, key) index (migration 0014 moved
#: the keys' uniqueness to job_search), so the page walks job_search's in key order.
_KEYED_JOBS = "jobs j JOIN job_search k ON k.job_id = j.id"


def _keyed(order: str, sql: str) -> str:
    """An ORDER BY or keyset bound of `order` on job_search's copy of the key columns when
    the order is by key (the same values: the trigger keeps them), so its index serves."""
    return sql.replace("j.queue", "k.queue").replace("j.key", "k.key") if order == "key" else sql


def _jobs(order: str) -> str:
    """The FROM of a page in `order` (alias `j`)."""
    return _KEYED_JOBS if order == "key" else "jobs j"


#: Orders whose index leads with the status (`jobs_status_time`, `jobs_status_attempts`):
#: a page in them merges the per-status runs instead of sorting the matches. Sorting by
#: status is one too: those indexes leave running jobs out (migration 0014), so no index
#: holds the whole order, and its running run is a sort of the workers' few jobs.
_MERGED_ORDERS = _BY_UPDATED | {"attempts", "status"}


class PgJobPages:
    """Job reads on one psycopg connection (the read half of `PgJobs`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._columns: list[str] | None = None

    def _cut_columns(self, chars: int) -> str:
        """Every column of `jobs j`, the error cut to `chars` characters."""
        if self._columns is None:
            cur = self._conn.execute("SELECT * FROM jobs LIMIT 0")
            self._columns = [c.name for c in cur.description or ()]
        cut = f"left(j.error, {int(chars)}) AS error"
        return ", ".join(cut if name == "error" else f"j.{name}" for name in self._columns)

    def _select(self, with_bodies: bool, jobs: str = "jobs j") -> str:
        """The SELECT … FROM part of a job query (alias `j`; `jobs`: its FROM)."""
        if with_bodies:
            return _JOBS_WITH_BODIES.format(jobs=jobs)
        return _JOBS_WITHOUT_BODIES.format(columns=self._cut_columns(LIST_ERROR_CHARS), jobs=jobs)

    def _rows(
        self,
        flt: JobFilter,
        limit: int | None,
        offset: int,
        order: str,
        with_bodies: bool,
        page: Page | None = None,
    ) -> Iterator[Job]:
        reverse = page is not None and page.before
        order_sql = _keyed(order, _order_sql(order, reverse))
        past = None if page is None else _past(order, page.job, "%s", reverse)
        if past is not None:
            past = (_keyed(order, past[0]), past[1])
        select = self._select(with_bodies, _jobs(order))
        if limit is not None and order in _MERGED_ORDERS:
            sql, params = _merged_by_status(
                select, flt, order_sql, limit, offset, mark="%s", like="ILIKE", past=past
            )
        elif page is not None and past is not None:
            where, params = _pg_where(flt, _id_bound(order, page.job, reverse))
            sql = f"{select} WHERE {where} AND {past[0]} ORDER BY {order_sql}"
            params = [*params, *past[1]]
            if limit is not None:
                sql += " LIMIT %s"
                params = [*params, limit]
        elif limit is not None and offset > 0:
            # A deep page skips `offset` rows: skip them as ids (an index-only walk of the
            # order's index), then read the page's rows alone. Skipping whole rows fetched
            # every skipped row from the table (40 ms at offset 100,000 of 1M jobs).
            where, params = _pg_where(flt)
            sql = (
                f"{select} WHERE j.id IN (SELECT j.id FROM {_jobs(order)} WHERE {where} "
                f"ORDER BY {order_sql} LIMIT %s OFFSET %s) ORDER BY {order_sql}"
            )
            params = [*params, limit, offset]
        else:
            where, params = _pg_where(flt)
            sql = f"{select} WHERE {where} ORDER BY {order_sql}"
            if limit is not None:
                sql += " LIMIT %s"
                params = [*params, limit]
        if limit is None:
            # Single-row mode streams an export of any size instead of loading it whole;
            # it works outside a transaction too (an export reads after `read` returned).
            rows = self._conn.cursor().stream(sql, params)
        else:
            rows = self._conn.execute(sql, params, prepare=_prepare(past is not None))
        for row in rows:
            yield _job(row)

    def count_jobs(self, flt: JobFilter) -> int:
        """Count matching jobs, from job_counts when the filter allows it (no table scan)."""
        if _counted(flt):
            return int(
                _value(
                    self._conn,
                    "SELECT coalesce(sum(n), 0) AS v FROM job_counts "
                    "WHERE (%(statuses)s::text[] = '{}' OR status = ANY(%(statuses)s)) "
                    "AND (%(queues)s::text[] = '{}' OR queue = ANY(%(queues)s))",
                    {"statuses": list(flt.statuses), "queues": list(flt.queues)},
                )
            )
        where, params = _pg_where(flt)
        return int(_value(self._conn, f"SELECT count(*) AS v FROM jobs j WHERE {where}", params))

    def list_jobs(
        self,
        flt: JobFilter = ALL_JOBS,
        limit: int | None = None,
        offset: int = 0,
        order: str = "id",
        *,
        with_bodies: bool = True,
        page: Page | None = None,
    ) -> list[Job]:
        """One page (or all, when `limit` is None) of jobs matching `flt`.

        With `with_bodies=False` every `Job.payload` and `Job.result` is None, and neither is read;
        `Job.error` holds at most LIST_ERROR_CHARS characters. With `page`, the rows right after
        (or before) its job in `order`, in `order`, instead of from `offset`.
        """
        rows = list(self._rows(flt, limit, offset, order, with_bodies, page))
        return rows[::-1] if page is not None and page.before else rows

    def iter_jobs(self, flt: JobFilter = ALL_JOBS, order: str = "id") -> Iterator[Job]:
        """Every job matching `flt`, streamed row by row (for exports of any size)."""
        return self._rows(flt, None, 0, order, True)

    def get_job(self, job_id: int) -> Job:
        """The job with this id, or NotFoundError."""
        row = self._conn.execute(f"{self._select(True)} WHERE j.id = %s", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job id {job_id}")
        return _job(row)

    def get_job_head(self, job_id: int, chars: int) -> tuple[Job, dict[str, int]]:
        """The job with its error, payload and result each cut to `chars` characters.

        Returns the job and, for each text that was cut, its full size in UTF-8 bytes (so a view
        can say how much it leaves out). A cut payload or result is the raw JSON head, undecoded.
        """
        row = self._conn.execute(
            f"SELECT {self._cut_columns(chars)}, left(p.payload, %(n)s) AS payload, "
            "left(r.result, %(n)s) AS result, "
            "length(j.error) AS error_chars, octet_length(j.error) AS error_bytes, "
            "length(p.payload) AS payload_chars, octet_length(p.payload) AS payload_bytes, "
            "length(r.result) AS result_chars, octet_length(r.result) AS result_bytes "
            "FROM jobs j LEFT JOIN job_payloads p ON p.job_id = j.id "
            "LEFT JOIN job_results r ON r.job_id = j.id WHERE j.id = %(id)s",
            {"n": chars, "id": job_id},
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job id {job_id}")
        cut = {
            name: row[f"{name}_bytes"] for name in _JOB_TEXTS if (row[f"{name}_chars"] or 0) > chars
        }
        bodies = {name: row[name] if name in cut else _loads(row[name]) for name in _JOB_TEXTS[1:]}
        job = _build(Job, row, **bodies)
        return job, cut

    def next_run_after(self, now: float) -> float | None:
        """When the earliest delayed (retrying) job becomes runnable, if any is waiting.

        "Delayed" is by the server's clock (`now` is not needed): the one claims go by.
        """
        value = _value(
            self._conn,
            f"SELECT min(run_after) AS v FROM jobs WHERE status = {JOB_PENDING_SQL} "
            "AND batch_id IS NULL AND run_after > batchdash_now()",
        )
        return None if value is None else float(value)

    def count_jobs_upto(
        self, flt: JobFilter, cap: int, *, ahead_of: Job | None = None, order: str = "id"
    ) -> tuple[int, bool]:
        """(count, exact): exact from job_counts when the filter allows, else counted to `cap`.

        Free-text, key and score filters cannot use job_counts; stopping at `cap` keeps a
        dashboard refresh from counting a million rows every second. With `ahead_of`, only
        the matching jobs in front of that one in `order` count (always counted to `cap`).
        """
        if ahead_of is None and _counted(flt):
            return self.count_jobs(flt), True
        where, params = _pg_where(flt)
        if ahead_of is not None:
            past = _past(order, ahead_of, "%s", reverse=True)
            where, params = f"{where} AND {_keyed(order, past[0])}", [*params, *past[1]]
        jobs = _jobs(order) if ahead_of is not None else "jobs j"
        n = int(
            _value(
                self._conn,
                f"SELECT count(*) AS v FROM (SELECT 1 FROM {jobs} WHERE {where} LIMIT %s) AS upto",
                [*params, cap + 1],
                prepare=_prepare(ahead_of is not None),
            )
        )
        return min(n, cap), n <= cap
