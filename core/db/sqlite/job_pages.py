"""Job reads: pages in any order, counts, one job, its texts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from batchdash.core.db.ports import Page
from batchdash.core.db.sqlite.rows import (
    _cut_columns,
    _select_jobs,
)
from batchdash.core.db.sqlshared import (
    _BY_UPDATED,
    _JOB_TEXTS,
    _build,
    _counted,
    _job,
    _loads,
    _merged_by_status,
    _order_sql,
    _past,
    _where,
)
from batchdash.core.errors import NotFoundError
from batchdash.core.models import (
    ALL_JOBS,
    Job,
    JobFilter,
)


def _job_rows(
    conn: sqlite3.Connection,
    flt: JobFilter,
    limit: int | None,
    offset: int,
    order: str,
    with_bodies: bool = True,
    page: Page | None = None,
) -> Iterator[Job]:
    """Jobs in `order`, from `offset` or, with `page`, right after (or before) its row."""
    reverse = page is not None and page.before
    order_sql = _order_sql(order, reverse)
    past = None if page is None else _past(order, page.job, reverse=reverse)
    if limit is not None and order in _BY_UPDATED:
        select = _select_jobs(conn, with_bodies)
        sql, params = _merged_by_status(select, flt, order_sql, limit, offset, past=past)
    else:
        where, params = _where(flt)
        if past is not None:
            where, params = f"{where} AND {past[0]}", [*params, *past[1]]
        walk = JobPages(conn)._walk_order(flt, limit, offset, order)
        select = _select_jobs(conn, with_bodies, walk or "jobs j")
        sql = f"{select} WHERE {where} ORDER BY {order_sql}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, limit, offset]
    for row in conn.execute(sql, params):
        yield _job(row)


#: How to walk the rows in a sort order's own sequence instead of sorting them: the
#: table itself for ids, the (queue, key) uniqueness index for keys, and so on.
_ORDER_WALKS = {
    "id": "jobs j NOT INDEXED",
    "-id": "jobs j NOT INDEXED",
    "key": "jobs j INDEXED BY sqlite_autoindex_jobs_1",
    "attempts": "jobs j INDEXED BY jobs_attempts",
}


class JobPages:
    """Job reads on one SQLite connection (the read half of `SqliteJobs`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _walk_order(self, flt: JobFilter, limit: int | None, offset: int, order: str) -> str | None:
        """The FROM clause that walks `order`'s own sequence, when that beats the planner.

        With a status or queue filter the planner picks that filter's index and sorts all the
        matches: 50 ms for 50k failed jobs, up to two seconds for 900k succeeded ones. A walk
        in the order's sequence visits about (offset + limit) × total / matching rows if the
        matches are spread out; job_counts gives both counts, so take the cheaper way.
        """
        walk = _ORDER_WALKS.get(order)
        if walk is None or limit is None:
            return None
        if not _counted(flt) or flt == ALL_JOBS:
            return None
        matching = self.count_jobs(flt)
        total = self.count_jobs(ALL_JOBS)
        return walk if matching > 0 and (offset + limit) * total < matching * matching else None

    def count_jobs(self, flt: JobFilter) -> int:
        """Count matching jobs, from job_counts when the filter allows it (no table scan)."""
        if _counted(flt):
            where_parts: list[str] = []
            params: list[Any] = []
            if flt.statuses:
                where_parts.append(f"status IN ({','.join('?' * len(flt.statuses))})")
                params.extend(flt.statuses)
            if flt.queues:
                where_parts.append(f"queue IN ({','.join('?' * len(flt.queues))})")
                params.extend(flt.queues)
            where = " AND ".join(where_parts) or "1"
            row = self._conn.execute(
                f"SELECT coalesce(sum(n), 0) FROM job_counts WHERE {where}", params
            ).fetchone()
            return int(row[0])
        where, params = _where(flt)
        return int(
            self._conn.execute(f"SELECT count(*) FROM jobs j WHERE {where}", params).fetchone()[0]
        )

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
        rows = list(_job_rows(self._conn, flt, limit, offset, order, with_bodies, page))
        return rows[::-1] if page is not None and page.before else rows

    def iter_jobs(self, flt: JobFilter = ALL_JOBS, order: str = "id") -> Iterator[Job]:
        """Every job matching `flt`, streamed row by row (for exports of any size)."""
        return _job_rows(self._conn, flt, None, 0, order)

    def get_job(self, job_id: int) -> Job:
        """The job with this id, or NotFoundError."""
        row = self._conn.execute(
            f"{_select_jobs(self._conn, True)} WHERE j.id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job id {job_id}")
        return _job(row)

    def get_job_head(self, job_id: int, chars: int) -> tuple[Job, dict[str, int]]:
        """The job with its error, payload and result each cut to `chars` characters.

        Returns the job and, for each text that was cut, its full size in UTF-8 bytes (so a view
        can say how much it leaves out). A cut payload or result is the raw JSON head, undecoded.
        """
        row = self._conn.execute(
            f"SELECT {_cut_columns(self._conn, chars)}, substr(p.payload, 1, ?) AS payload, "
            "substr(r.result, 1, ?) AS result, "
            "length(j.error) AS error_chars, length(CAST(j.error AS BLOB)) AS error_bytes, "
            "length(p.payload) AS payload_chars, length(CAST(p.payload AS BLOB)) AS payload_bytes, "
            "length(r.result) AS result_chars, length(CAST(r.result AS BLOB)) AS result_bytes "
            "FROM jobs j LEFT JOIN job_payloads p ON p.job_id = j.id "
            "LEFT JOIN job_results r ON r.job_id = j.id WHERE j.id = ?",
            (chars, chars, job_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job id {job_id}")
        cut = {
            name: row[f"{name}_bytes"] for name in _JOB_TEXTS if (row[f"{name}_chars"] or 0) > chars
        }
        bodies = {name: row[name] if name in cut else _loads(row[name]) for name in _JOB_TEXTS[1:]}
        job = _build(Job, row, **bodies, cancel_requested=bool(row["cancel_requested"]))
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
        where, params = _where(flt)
        if ahead_of is not None:
            past = _past(order, ahead_of, reverse=True)
            where, params = f"{where} AND {past[0]}", [*params, *past[1]]
        n = int(
            self._conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE {where} LIMIT ?)",
                [*params, cap + 1],
            ).fetchone()[0]
        )
        return min(n, cap), n <= cap
