"""Job reads on PostgreSQL: pages in any order, counts, one job, its texts (the read half
of `PgJobs`, the same behaviour as `core/db/sqlite/job_pages.py`).

Text filters use ILIKE (SQLite's LIKE already ignores case). Every page order is over
NOT NULL columns, and the text columns it sorts on are COLLATE "C", so both back ends put
the same rows on the same page. A status (or queue) with a text filter is read by
walking the status's jobs first (`text_walk.py`), and by the planner's join when that walk
does not settle it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from batchdash.core.db.ports import Page
from batchdash.core.db.postgres.text_walk import (
    TextWalk,
    first_budget,
    next_budget,
    text_walk,
)
from batchdash.core.db.sqlshared import (
    _BY_UPDATED,
    _JOB_TEXTS,
    _JOBS_WITH_BODIES,
    _JOBS_WITHOUT_BODIES,
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


def _pg_where(
    flt: JobFilter, ids: IdBound | None = None, past: tuple[str, list[Any]] | None = None
) -> tuple[str, list[Any]]:
    """A job filter's WHERE clause in psycopg's placeholders, with ILIKE (`ids`: a keyset
    page's id range, repeated inside the text lookups; `past`: a condition from `_past`)."""
    where, params = _where(flt, mark="%s", like="ILIKE", ids=ids)
    if past is None:
        return where, params
    return f"{where} AND {past[0]}", [*params, *past[1]]


def _prepare(keyset: bool) -> bool | None:
    """psycopg's `prepare` for a read: never for one bounded by a keyset page's row.

    psycopg prepares a statement it has run five times, and the server may then plan it
    once for any parameters. That generic plan cannot see that a page's bound (`j.id > $4`)
    leaves a few hundred thousand of 10M rows: under a text filter it counted the 1,000 rows
    in front of page 51 in 1.6 s, where the plan for the actual bound takes 26 ms. Planning
    each such read costs a few milliseconds.
    """
    return False if keyset else None


_T = TypeVar("_T")

#: The FROM of a page sorted by key: jobs has no (queue, key) index (migration 0014 moved
#: the keys' uniqueness to job_search), so the page walks job_search's in key order.
_KEYED_JOBS = "jobs j JOIN job_search k ON k.job_id = j.id"


def _keyed(keyed: bool, sql: str) -> str:
    """An ORDER BY or keyset bound by key on job_search's copy of the key columns when
    `keyed` (the same values: the trigger keeps them), so its index serves."""
    return sql.replace("j.queue", "k.queue").replace("j.key", "k.key") if keyed else sql


def _jobs(keyed: bool) -> str:
    """The FROM of a query whose ORDER BY or bound is `_keyed(keyed, …)` (alias `j`)."""
    return _KEYED_JOBS if keyed else "jobs j"


#: Orders whose index leads with the status (`jobs_status_time`, `jobs_status_attempts`):
#: a page in them merges the per-status runs instead of sorting the matches. Sorting by
#: status is one too: those indexes leave running jobs out (migration 0014), so no index
#: holds the whole order, and its running run is a sort of the workers' few jobs.
_MERGED_ORDERS = _BY_UPDATED | {"attempts", "status"}


def _ordering(
    order: str, page: Page | None, keyed: bool
) -> tuple[bool, str, tuple[str, list[Any]] | None]:
    """A page's direction (True: before its row), ORDER BY and condition past its row, over
    `_jobs(keyed)`."""
    reverse = page is not None and page.before
    past = None if page is None else _past(order, page.job, "%s", reverse)
    return reverse, _keyed(keyed, _order_sql(order, reverse)), _keyed_past(keyed, past)


def _keyed_past(keyed: bool, past: tuple[str, list[Any]] | None) -> tuple[str, list[Any]] | None:
    """`_past`'s condition over `_jobs(keyed)`."""
    return None if past is None else (_keyed(keyed, past[0]), past[1])


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
        """The SELECT … FROM part of a job query (`jobs`: the table, or a subquery, as `j`)."""
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
        keyed = self._walks_key_index(flt, order, offset + (limit or 0))
        reverse, order_sql, past = _ordering(order, page, keyed)
        select = self._select(with_bodies, _jobs(keyed))
        if limit is not None and order in _MERGED_ORDERS:
            sql, params = _merged_by_status(
                select, flt, order_sql, limit, offset, mark="%s", like="ILIKE", past=past
            )
        elif page is not None and past is not None:
            where, params = _pg_where(flt, _id_bound(order, page.job, reverse), past)
            sql = f"{select} WHERE {where} ORDER BY {order_sql}"
            if limit is not None:
                sql += " LIMIT %s"
                params = [*params, limit]
        elif limit is not None and offset > 0:
            # A deep page skips `offset` rows: skip them as ids (an index-only walk of the
            # order's index), then read the page's rows alone. Skipping whole rows fetched
            # every skipped row from the table (40 ms at offset 100,000 of 1M jobs).
            where, params = _pg_where(flt)
            sql = (
                f"{select} WHERE j.id IN (SELECT j.id FROM {_jobs(keyed)} WHERE {where} "
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

    def _walks_key_index(self, flt: JobFilter, order: str, wanted: int) -> bool:
        """Whether a page in `order` walks job_search's key index (the key order), or sorts
        the matches instead: a filter of statuses and queues alone that holds few jobs.

        The walk looks each job up by id and passes the jobs of other statuses: about
        `wanted` × all jobs / matching rows. A sort reads the matches: their number is known
        exactly from job_counts. Sorting when matches² ≤ wanted × all jobs: at 1M jobs the
        2,048 running jobs by key took 63 ms walked, 2 ms sorted; at 10M the 50,000 pending
        ones 49 ms walked, 144 ms sorted.
        """
        if order != "key" or not (flt.statuses or flt.queues) or not _counted(flt):
            return order == "key"
        matching = self.count_jobs(flt)
        return matching * matching > max(wanted, 1) * self.count_jobs(ALL_JOBS)

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
        walk = text_walk(flt)
        rows = None
        # Merged orders keep their per-status runs (a walk in them would sort the status).
        if walk is not None and limit is not None and order not in _MERGED_ORDERS:
            skip = 0 if page is not None else offset
            rows = self._walked_rows(walk, limit, skip, order, with_bodies, page)
        if rows is None:
            rows = list(self._rows(flt, limit, offset, order, with_bodies, page))
        return rows[::-1] if page is not None and page.before else rows

    def _walked_rows(
        self,
        walk: TextWalk,
        limit: int,
        offset: int,
        order: str,
        with_bodies: bool,
        page: Page | None,
    ) -> list[Job] | None:
        """The page by walking the status's jobs in `order` (see text_walk), or None when
        no walk's budget settled it."""
        keyed = order == "key"
        reverse, order_sql, past = _ordering(order, page, keyed)
        where, params = _pg_where(walk.rest, past=past)
        jobs = f"(SELECT j.* FROM {_jobs(keyed)} WHERE {where} ORDER BY {order_sql} LIMIT %s) AS j"
        sql = (
            f"{self._select(with_bodies, jobs)} WHERE {walk.probe} "
            f"ORDER BY {_order_sql(order, reverse)} LIMIT %s OFFSET %s"
        )

        def read(budget: int) -> tuple[list[Job], int]:
            rows = self._conn.execute(
                sql, [*params, budget, *walk.probe_params, limit, offset], prepare=False
            ).fetchall()
            return [_job(row) for row in rows], (offset + len(rows) if rows else 0)

        return self._settled(walk, offset + limit, read)

    def _settled(
        self, walk: TextWalk, wanted: int, read: Callable[[int], tuple[_T, int]]
    ) -> _T | None:
        """What `read(budget)` returns (with how many rows it found) once it found `wanted`
        rows or walked every job of `walk.rest`; None when no budget settles it."""
        size = self.count_jobs(walk.rest)
        budget: int | None = first_budget(wanted, size)
        while budget is not None:
            answer, found = read(budget)
            if found >= wanted or size <= budget:
                return answer
            budget = next_budget(wanted, budget, found)
        return None

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
        past = None if ahead_of is None else _past(order, ahead_of, "%s", reverse=True)
        keyed = past is not None and self._walks_key_index(flt, order, cap + 1)
        past, jobs = _keyed_past(keyed, past), _jobs(keyed)
        walk = text_walk(flt)
        walked = None if walk is None else self._walked_count(walk, cap, past, jobs)
        return self._joined_count(flt, cap, past, jobs) if walked is None else walked

    def _joined_count(
        self, flt: JobFilter, cap: int, past: tuple[str, list[Any]] | None, jobs: str = "jobs j"
    ) -> tuple[int, bool]:
        """`count_jobs_upto` by the planner's plan for the whole filter (`jobs`: the FROM
        that `past` is over)."""
        where, params = _pg_where(flt, past=past)
        n = int(
            _value(
                self._conn,
                f"SELECT count(*) AS v FROM (SELECT 1 FROM {jobs} WHERE {where} LIMIT %s) AS upto",
                [*params, cap + 1],
                prepare=_prepare(past is not None),
            )
        )
        return min(n, cap), n <= cap

    def _walked_count(
        self, walk: TextWalk, cap: int, past: tuple[str, list[Any]] | None, jobs: str
    ) -> tuple[int, bool] | None:
        """`count_jobs_upto` by walking the status's jobs (see text_walk), or None when no
        walk's budget settled it (`jobs`: the FROM that `past` is over)."""
        where, params = _pg_where(walk.rest, past=past)
        sql = (
            f"SELECT count(*) AS v FROM (SELECT 1 FROM (SELECT j.id FROM {jobs} "
            f"WHERE {where} LIMIT %s) AS j WHERE {walk.probe} LIMIT %s) AS upto"
        )

        def read(budget: int) -> tuple[int, int]:
            args = [*params, budget, *walk.probe_params, cap + 1]
            n = int(_value(self._conn, sql, args, prepare=False))
            return n, n

        n = self._settled(walk, cap + 1, read)
        return None if n is None else (min(n, cap), n <= cap)
