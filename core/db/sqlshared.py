"""Row mapping, job-filter SQL and enum-built SQL literals shared by every back end.

Both stores (`sqlite/`, `postgres/`) return rows that map column names to values
(`sqlite3.Row`, psycopg's `dict_row`), so one set of converters builds the models from them.
SQL written here is the dialect both speak; the only difference (placeholders, and ILIKE
where SQLite's LIKE is already case-insensitive) is a parameter of `_where`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from batchdash.core.errors import StoreError
from batchdash.core.models import (
    ACTIVE_BATCH_STATES,
    Batch,
    BatchState,
    Event,
    ItemOutcome,
    Job,
    JobFilter,
    JobStatus,
    Worker,
    WorkerState,
    dumps,
)

T = TypeVar("T")


class Row(Protocol):
    """A result row of either back end: values by column name, and the names."""

    def __getitem__(self, key: str) -> Any: ...

    def keys(self) -> Iterable[str]: ...


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _build(cls: type[T], row: Row, **overrides: Any) -> T:
    """A dataclass from a row: columns named like its fields, decoded ones overridden.

    Columns the dataclass does not know (added by later migrations) are ignored.
    """
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    # sqlite3.Row iterates over values, not names: keys() is needed here.
    data = {key: row[key] for key in row.keys() if key in names}  # noqa: SIM118
    data.update(overrides)
    return cls(**data)


#: Jobs (alias `j`) with their payload and result, which live in their own tables.
_JOBS_WITH_BODIES = (
    "SELECT j.*, p.payload, r.result FROM {jobs} "
    "LEFT JOIN job_payloads p ON p.job_id = j.id LEFT JOIN job_results r ON r.job_id = j.id"
)


#: The same rows without payload and result, for lists that never show them (no reads of
#: two ~2 KB texts per row, no decoding), and with the error cut to LIST_ERROR_CHARS.
_JOBS_WITHOUT_BODIES = "SELECT {columns}, NULL AS payload, NULL AS result FROM {jobs}"


#: Characters of each job's error a light list page reads: a page shows one line of it, and
#: a multi-megabyte error would otherwise be copied out on every refresh.
LIST_ERROR_CHARS = 1000


def _job(row: Row) -> Job:
    return _build(
        Job,
        row,
        payload=_loads(row["payload"]),
        result=_loads(row["result"]),
        cancel_requested=bool(row["cancel_requested"]),
    )


def _worker(row: Row) -> Worker:
    return _build(
        Worker,
        row,
        queues=json.loads(row["queues"]),
        current_jobs=json.loads(row["current_jobs"]),
    )


def _event(row: Row) -> Event:
    return _build(Event, row)


def key_pattern(pattern: str) -> str:
    """Translate a `key:abc*` wildcard into a LIKE pattern (escape char is backslash)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def text_pattern(text: str) -> str:
    """The LIKE pattern of a free-text filter: its words anywhere in the text."""
    return f"%{key_pattern(text)}%"


#: A key pattern and a free-text one (key or error; `{m}` is the placeholder, `{bound}` an
#: id range or nothing), by the back end's case-insensitive LIKE. PostgreSQL matches both
#: texts in job_search, whose trigram indexes live off the jobs table that every claim and
#: finish rewrites (its migration 0012); SEARCH_KEY and SEARCH_TEXT test one row of it (`s`).
SEARCH_KEY = "s.key ILIKE {m} ESCAPE '\\'"
SEARCH_TEXT = "(s.key ILIKE {m} ESCAPE '\\' OR s.error ILIKE {m} ESCAPE '\\')"
_KEY_MATCH = {
    "LIKE": "j.key LIKE {m} ESCAPE '\\'",
    "ILIKE": f"j.id IN (SELECT s.job_id FROM job_search s WHERE {SEARCH_KEY}{{bound}})",
}
_TEXT_MATCH = {
    "LIKE": "(j.key LIKE {m} ESCAPE '\\' OR j.error LIKE {m} ESCAPE '\\')",
    "ILIKE": f"j.id IN (SELECT s.job_id FROM job_search s WHERE {SEARCH_TEXT}{{bound}})",
}


def _where(
    flt: JobFilter, mark: str = "?", like: str = "LIKE", ids: IdBound | None = None
) -> tuple[str, list[Any]]:
    """Build a parameterized WHERE clause for a job filter (table alias `j`).

    `mark` is the back end's placeholder and `like` its case-insensitive LIKE (SQLite's
    LIKE already ignores ASCII case; PostgreSQL needs ILIKE), which also picks where keys
    and texts are matched (`_KEY_MATCH`, `_TEXT_MATCH`). `ids` (from `_id_bound`) repeats a
    keyset page's id range inside those text lookups: the planner does not carry a range
    on `j.id` over to `s.job_id`, and walked job_search from its far end (130 ms for page
    51 of "failed + timeout" at 1M jobs).
    """
    clauses: list[str] = []
    params: list[Any] = []
    bound = "" if ids is None else f" AND s.job_id {ids[0]} {mark}"
    bound_params = [] if ids is None else [ids[1]]

    def any_of(column: str, values: Sequence[Any]) -> None:
        clauses.append(f"{column} IN ({','.join([mark] * len(values))})")
        params.extend(values)

    if flt.statuses:
        any_of("j.status", flt.statuses)
    if flt.queues:
        any_of("j.queue", flt.queues)
    if flt.ids:
        any_of("j.id", flt.ids)
    if flt.key_glob:
        key_match = _KEY_MATCH[like]
        clauses.append(key_match.format(m=mark, bound=bound))
        params.append(key_pattern(flt.key_glob))
        params += bound_params if "{bound}" in key_match else []
    if flt.batch_id is not None:
        clauses.append(f"j.batch_id = {mark}")
        params.append(flt.batch_id)
    if flt.worker_id:
        clauses.append(f"j.worker_id = {mark}")
        params.append(flt.worker_id)
    if flt.providers:
        # Work sent to a provider: its batches' lines, and local jobs of its handler.
        marks = ",".join([mark] * len(flt.providers))
        clauses.append(
            f"(j.batch_id IN (SELECT b.id FROM batches b WHERE b.provider IN ({marks})) "
            f"OR (j.batch_id IS NULL AND j.handler IN ({marks})))"
        )
        params.extend([*flt.providers, *flt.providers])
    if flt.tags:
        # The (tag, job_id) key lists the tagged ids: jobs are looked up by id, not scanned.
        clauses.append(
            f"j.id IN (SELECT t.job_id FROM job_tags t WHERE t.tag IN "
            f"({','.join([mark] * len(flt.tags))}))"
        )
        params.extend(flt.tags)
    if flt.created_after is not None:
        clauses.append(f"j.created_at >= {mark}")
        params.append(flt.created_after)
    if flt.created_before is not None:
        clauses.append(f"j.created_at < {mark}")
        params.append(flt.created_before)
    if flt.text:
        text_match = _TEXT_MATCH[like]
        clauses.append(text_match.format(m=mark, bound=bound))
        params.extend([text_pattern(flt.text)] * 2)
        params += bound_params if "{bound}" in text_match else []
    if flt.score_below is not None:
        clauses.append(
            f"EXISTS (SELECT 1 FROM qa_results q WHERE q.job_id = j.id AND q.overall < {mark})"
        )
        params.append(flt.score_below)
    if flt.score_above is not None:
        clauses.append(
            f"EXISTS (SELECT 1 FROM qa_results q WHERE q.job_id = j.id AND q.overall > {mark})"
        )
        params.append(flt.score_above)
    sql = " AND ".join(clauses) if clauses else "1 = 1"
    return sql, params


#: Each page order's sort key as (column of `jobs`, descending) pairs; the last pair, or
#: all of them together, is unique, so "the rows after this one" is well defined. Each
#: order is served by an index, not a sort: the (queue, key) uniqueness index, the
#: (status, time) index and the attempts index. A million-job sort took 100-500 ms.
_ORDER_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "id": (("id", False),),
    "-id": (("id", True),),
    "updated": (("updated_at", False), ("id", False)),
    "-updated": (("updated_at", True), ("id", True)),
    "key": (("queue", False), ("key", False)),
    "status": (("status", False), ("updated_at", False), ("id", False)),
    "attempts": (("attempts", True), ("id", False)),
}


_BY_UPDATED = frozenset({"updated", "-updated"})

#: A range on job ids, as (comparison, id): `("<", 711493)`.
IdBound = tuple[str, int]


def _id_bound(order: str, job: Job, reverse: bool = False) -> IdBound | None:
    """The id range of the rows after `job` (before it, `reverse`) when `order` is by id
    alone, for `_where`'s `ids`; None for other orders."""
    keys = _order_keys(order)
    if len(keys) != 1 or keys[0][0] != "id":
        return None
    return ("<" if keys[0][1] != reverse else ">", job.id)


def _order_keys(order: str) -> tuple[tuple[str, bool], ...]:
    """A page order's sort key by name (StoreError naming the known ones)."""
    keys = _ORDER_KEYS.get(order)
    if keys is None:
        raise StoreError(f"unknown sort order {order!r}; one of {', '.join(_ORDER_KEYS)}")
    return keys


def _order_sql(order: str, reverse: bool = False) -> str:
    """The ORDER BY of a job page order's name (`reverse`: the other way round)."""
    return ", ".join(
        f"j.{column}{' DESC' if desc != reverse else ''}" for column, desc in _order_keys(order)
    )


def _past(order: str, job: Job, mark: str = "?", reverse: bool = False) -> tuple[str, list[Any]]:
    """A condition for the rows that come after `job` in `order` (before it, `reverse`).

    Keyset paging: a page after the last row shown is found by seeking the order's index
    to that row, where OFFSET walked every row in front of it (2.4 s for page 51 of a
    text-filtered view of 10M jobs). One direction is one row-value comparison, which the
    index serves; mixed directions spell it out column by column.
    """
    keys = _order_keys(order)
    # A status is a StrEnum: bound as its text on both back ends.
    values = [
        str(value) if isinstance(value, StrEnum) else value
        for value in (getattr(job, column) for column, _ in keys)
    ]
    directions = {desc != reverse for _, desc in keys}
    if len(directions) == 1:
        columns = ", ".join(f"j.{column}" for column, _ in keys)
        op = "<" if directions.pop() else ">"
        return f"({columns}) {op} ({', '.join([mark] * len(keys))})", values
    arms: list[str] = []
    params: list[Any] = []
    for n, (column, desc) in enumerate(keys):
        equal = [f"j.{name} = {mark}" for name, _ in keys[:n]]
        arms.append(" AND ".join([*equal, f"j.{column} {'<' if desc != reverse else '>'} {mark}"]))
        params += values[: n + 1]
    return "(" + " OR ".join(f"({arm})" for arm in arms) + ")", params


def _merged_by_status(
    select: str,
    flt: JobFilter,
    order_sql: str,
    limit: int,
    offset: int,
    mark: str = "?",
    like: str = "LIKE",
    past: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """A page as a merge of per-status runs of an index that leads with the status.

    No index orders all jobs by update time (nor, on PostgreSQL, by attempts), so the plain
    query sorted the whole table (a second at a million jobs); each status's run is already
    in order and needs only its first offset + limit rows. `mark` and `like` are as for
    `_where`; `past` (from `_past`) starts every run after a row.
    """
    arms: list[str] = []
    params: list[Any] = []
    for n, status in enumerate(flt.statuses or tuple(JobStatus)):
        where, arm_params = _where(replace(flt, statuses=(status,)), mark, like)
        if past is not None:
            where, arm_params = f"{where} AND {past[0]}", [*arm_params, *past[1]]
        arms.append(
            f"SELECT * FROM ({select} WHERE {where} ORDER BY {order_sql} LIMIT {mark}) AS run{n}"
        )
        params += [*arm_params, offset + limit]
    outer_order = order_sql.replace("j.", "")
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(arms)}) AS runs "
        f"ORDER BY {outer_order} LIMIT {mark} OFFSET {mark}"
    )
    return sql, [*params, limit, offset]


def _counted(flt: JobFilter) -> bool:
    """Whether job_counts alone answers how many jobs match (statuses and queues only)."""
    return flt == JobFilter(statuses=flt.statuses, queues=flt.queues)


#: The texts of a job that `get_job_head` cuts.
_JOB_TEXTS = ("error", "payload", "result")


def _batch(row: Row) -> Batch:
    return _build(
        Batch,
        row,
        errors=_loads(row["errors"]),
        metadata=_loads(row["metadata"]),
        request_counts=_loads(row["request_counts"]),
    )


def sql_literal(member: StrEnum) -> str:
    """`'a'`: one enum value as an SQL literal, for the reason `sql_in` gives."""
    return f"'{member.value}'"


def sql_in(members: Iterable[StrEnum]) -> str:
    """`('a', 'b')`: an IN list of enum values as SQL literals, in the enum's own order.

    Literals, not parameters, so the planner can match partial indexes whose WHERE names
    the same list (in the same order); the values are our own enum members, never input.
    """
    chosen = set(members)
    kind = type(next(iter(chosen)))
    return "(" + ", ".join(f"'{m.value}'" for m in kind if m in chosen) + ")"


#: Batch states still moving on the provider's side (the partial index `batches_active`).
ACTIVE_BATCH_STATES_SQL = sql_in(ACTIVE_BATCH_STATES)
#: Batch states a batch never leaves.
TERMINAL_BATCH_STATES_SQL = sql_in(set(BatchState) - ACTIVE_BATCH_STATES)
#: Job statuses that `retry` and resubmission start again.
RETRYABLE_JOB_STATUSES_SQL = sql_in({JobStatus.FAILED, JobStatus.CANCELLED})
#: Single states as SQL literals: rendered SQL keeps the text the partial indexes match
#: (`jobs_lease ... WHERE status = 'running'`), while the words come from models.py.
JOB_PENDING_SQL = sql_literal(JobStatus.PENDING)
JOB_RUNNING_SQL = sql_literal(JobStatus.RUNNING)
JOB_FAILED_SQL = sql_literal(JobStatus.FAILED)
JOB_CANCELLED_SQL = sql_literal(JobStatus.CANCELLED)
BATCH_SUBMITTING_SQL = sql_literal(BatchState.SUBMITTING)
ITEM_PENDING_SQL = sql_literal(ItemOutcome.PENDING)
WORKER_STALE_SQL = sql_literal(WorkerState.STALE)
WORKER_DEAD_SQL = sql_literal(WorkerState.DEAD)
#: Worker states of a process that should still be heartbeating.
LIVE_WORKER_STATES_SQL = sql_in({WorkerState.IDLE, WorkerState.BUSY, WorkerState.DRAINING})


# --------------------------------------------------------------------------- remote batches

#: Jobs still waiting for work or results.
UNFINISHED_JOBS_SQL = sql_in({JobStatus.PENDING, JobStatus.RUNNING})

#: Columns of `batches` that `update_batch` may set (JSON ones are serialized for you).
BATCH_COLUMNS = frozenset(Batch.__dataclass_fields__) - {"id", "created_at"}

_BATCH_JSON_COLUMNS = frozenset({"errors", "metadata", "request_counts"})

#: How far along a provider status is; a poll never records a status of a lower rank
#: (a poller answering late must not undo what a faster one wrote). Terminal is final.
RAW_RANK = {
    "validating": 1,
    "in_progress": 2,
    "finalizing": 3,
    "cancelling": 3,
    "completed": 4,
    "failed": 4,
    "expired": 4,
    "cancelled": 4,
    # Anthropic's processing_status.
    "canceling": 3,
    "ended": 4,
}

TERMINAL_RANK = 4

#: The rank of a batch's `raw_status` (0 for statuses other providers use).
RANK_SQL = (
    "(CASE raw_status "
    + " ".join(f"WHEN '{raw}' THEN {rank}" for raw, rank in RAW_RANK.items())
    + " ELSE 0 END)"
)

#: Batches a poll cycle has work on: submitted and still active, or finished but not ingested.
POLL_WORK_SQL = (
    f"(state IN {sql_in(ACTIVE_BATCH_STATES - {BatchState.SUBMITTING})} OR "
    f"(ingested_at IS NULL AND state IN {TERMINAL_BATCH_STATES_SQL}))"
)


def batch_values(fields: dict[str, Any], what: str) -> dict[str, Any]:
    """Column values for a batch UPDATE: names checked (StoreError naming `what`), JSON ones
    serialized. Only checked names are ever written into SQL."""
    unknown = set(fields) - BATCH_COLUMNS
    if unknown:
        raise StoreError(f"{what}: unknown columns {sorted(unknown)}")
    return {
        k: (None if v is None else dumps(v)) if k in _BATCH_JSON_COLUMNS else v
        for k, v in fields.items()
    }


def ingest_totals(
    sums: Row, counts: dict[str, int], state: str
) -> tuple[dict[str, Any], tuple[str, str]]:
    """The batch columns and `batch_ingested` event that close an ingestion.

    `sums` has the items' `input_tokens`, `output_tokens`, `cost` and `n` (their count);
    `counts` is items per outcome.
    """
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    # The provider counts a non-2xx answer as completed: once the lines are in, succeeded
    # and failed come from their outcomes (cancelled and unread lines are neither).
    unsettled = counts.get("succeeded", 0) + counts.get("cancelled", 0) + counts.get("pending", 0)
    fields = {
        "input_tokens": sums["input_tokens"],
        "output_tokens": sums["output_tokens"],
        "cost": sums["cost"],
        "total": sums["n"],
        "completed": counts.get("succeeded", 0),
        "failed": sums["n"] - unsettled,
        "state": state,
        "next_poll_at": None,
    }
    return fields, ("batch_ingested", f"{state}: {detail}")


class SharedSqlRepository:
    """The shared half of a repository: SQL in the dialect both back ends share, run on one
    connection (sqlite3 or psycopg: both `execute` alike) through the back end's
    placeholder converter (`same_sql` or `pg_sql`)."""

    #: Whether the back end takes a list as one array parameter (see `member_of`).
    ARRAYS = False

    def __init__(self, conn: Any, sql: Callable[[str], str]) -> None:
        self._conn = conn
        self._sql = sql

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run shared SQL (`?` placeholders) on the back end's connection."""
        return self._conn.execute(self._sql(sql), params)


def same_sql(sql: str) -> str:
    """Shared SQL as SQLite runs it: `?` placeholders are SQLite's own."""
    return sql


def pg_sql(sql: str) -> str:
    """Shared SQL as psycopg runs it: `%` doubled (psycopg reads it as a placeholder's
    start), then `?` → `%s`. Shared SQL never has `?` or `%` other than these."""
    return sql.replace("%", "%%").replace("?", "%s")


def member_of(column: str, values: Sequence[Any], arrays: bool) -> tuple[str, list[Any]]:
    """`column` is one of `values`, as shared SQL: one array parameter where the back end
    has arrays (one plan whatever the count), else one placeholder per value."""
    if arrays:
        return f"{column} = ANY(?)", [list(values)]
    return f"{column} IN ({','.join('?' * len(values))})", list(values)
