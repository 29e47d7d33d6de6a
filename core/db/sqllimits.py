"""The rate-limits repository, written once for both back ends (shared SQL with `?`
placeholders, converted by the back end's `sql` function; see `core/db/sqlevents.py`).

Booking reads the queues' rows with `lock` appended (PostgreSQL: `FOR UPDATE`, so workers
on every host book one after another; SQLite's write transaction is already exclusive)
and the store's clock with them (`now_sql`), applies `core.ratelimit` to them and writes
them back: two statements in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

from batchdash.core.db.sqlevents import insert_events
from batchdash.core.db.sqlshared import SharedSqlRepository, _build
from batchdash.core.ratelimit import LimitStatus, RateLimit, Settlement, book

_COLUMNS = [f.name for f in fields(RateLimit)]
#: A limit's column values in `_COLUMNS` order (`astuple` deep-copies: ten times slower).
_values = attrgetter(*_COLUMNS)
#: The stored state after the key, then the key: `_UPDATE`'s parameters.
_state_then_key = attrgetter(*_COLUMNS[2:], *_COLUMNS[:2])
_UPSERT = (
    f"INSERT INTO rate_limits ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT (queue, model) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])
)
_UPDATE = (
    f"UPDATE rate_limits SET {', '.join(f'{c} = ?' for c in _COLUMNS[2:])} "
    "WHERE queue = ? AND model = ?"
)
_ORDER = " ORDER BY queue, model"


class SqlLimits(SharedSqlRepository):
    """Rate limits on one connection (sqlite3 or psycopg)."""

    def __init__(
        self,
        conn: Any,
        sql: Callable[[str], str],
        lock: str,
        clock: Callable[[float], float],
        now_sql: str,
    ) -> None:
        super().__init__(conn, sql)
        self._lock = lock
        self._clock = clock
        self._now_sql = now_sql  # `clock` as an SQL expression of the caller's `now` (`?`)

    def _select(self, where: str, params: tuple[Any, ...], lock: str = "") -> list[RateLimit]:
        sql = f"SELECT * FROM rate_limits{where}{_ORDER}{lock}"
        return [_build(RateLimit, r) for r in self._conn.execute(self._sql(sql), params)]

    def _save(self, limits: list[RateLimit]) -> None:
        """Write back rows read under the lock (they exist: a plain UPDATE)."""
        rows = [_state_then_key(limit) for limit in limits]
        if len(rows) == 1:  # the usual case: one statement, no batch machinery
            self._conn.execute(self._sql(_UPDATE), rows[0])
        else:
            self._conn.cursor().executemany(self._sql(_UPDATE), rows)

    def set_limit(
        self, queue: str, model: str, rpm: int | None, tpm: int | None, cooldown: float, now: float
    ) -> None:
        """Create or change the limit of a queue's model ('' = all its models)."""
        now = self._clock(now)
        found = self._select(" WHERE queue = ? AND model = ?", (queue, model), self._lock)
        limit = found[0] if found else RateLimit(queue, model, rpm, tpm, refilled_at=now)
        limit.rpm, limit.tpm, limit.cooldown = rpm, tpm, cooldown
        if not found:  # a new limit starts with full buckets
            limit.requests = limit.tokens = float("inf")
            limit.window_at = now
        limit.refill(now)
        self._conn.execute(self._sql(_UPSERT), _values(limit))
        insert_events(
            self._conn, self._sql, [(now, "limit_set", None, None, queue, None, _what(limit))]
        )

    def clear_limit(self, queue: str, model: str | None, now: float) -> int:
        """Remove a queue's limit for one model (None: all of them); returns how many went."""
        where, params = (
            (" WHERE queue = ?", (queue,))
            if model is None
            else (" WHERE queue = ? AND model = ?", (queue, model))
        )
        gone = self._conn.execute(self._sql(f"DELETE FROM rate_limits{where}"), params).rowcount
        if gone:
            detail = "all models" if model is None else _model(model)
            row = (self._clock(now), "limit_cleared", None, None, queue, None, detail)
            insert_events(self._conn, self._sql, [row])
        return int(gone)

    def list_limits(self, queue: str | None = None) -> list[RateLimit]:
        """The stored limits (of one queue, or all), by queue and model."""
        return self._select("", ()) if queue is None else self._select(" WHERE queue = ?", (queue,))

    def limited_queues(self) -> frozenset[str]:
        """Queues with any limit (one small read: workers skip the rest for free)."""
        return frozenset(
            r["queue"] for r in self._conn.execute("SELECT DISTINCT queue FROM rate_limits")
        )

    def reserve(self, queue: str, model: str, tokens: int, now: float) -> float:
        """Book one request of `tokens` against the queue's limits for all models and for
        `model`; returns the seconds to wait before sending it (0: at once)."""
        return self.settle_and_reserve([], [(queue, model, tokens)], now)[0]

    def correct(self, queue: str, model: str, booked: int, used: int, now: float) -> None:
        """Settle a booked request's tokens with what it really used."""
        self.settle_and_reserve([Settlement(queue, model, booked, used)], [], now)

    def note_throttled(self, queue: str, model: str, retry_after: float | None, now: float) -> None:
        """The provider answered 429: lower the effective rate for a while (see ratelimit)."""
        settled = Settlement(queue, model, 0, None, throttled=True, retry_after=retry_after)
        self.settle_and_reserve([settled], [], now)

    def settle_and_reserve(
        self, settled: Sequence[Settlement], booked: Sequence[tuple[str, str, int]], now: float
    ) -> list[float]:
        """Settle finished requests, then book new ones `(queue, model, tokens)` in order,
        reading and writing each limit involved once; returns each booking's wait."""
        queues = sorted({s.queue for s in settled} | {queue for queue, _, _ in booked})
        if not queues:
            return []
        marks = ", ".join("?" for _ in queues)
        sql = f"SELECT *, {self._now_sql} AS clock_now FROM rate_limits WHERE queue IN ({marks})"
        found = self._conn.execute(self._sql(sql + self._lock), (now, *queues)).fetchall()
        if not found:
            return [0.0] * len(booked)
        now = float(found[0]["clock_now"])  # the store's clock, read with the rows
        rows = [RateLimit(*[r[c] for c in _COLUMNS]) for r in found]
        by_key = {(limit.queue, limit.model): limit for limit in rows}
        for limit in rows:
            limit.refill(now)
        events = self._settle(by_key, settled, now)
        waits = self._book(by_key, booked, now)
        self._save(rows)
        if events:  # psycopg's executemany costs round trips even with nothing to insert
            insert_events(self._conn, self._sql, events)
        return waits

    @staticmethod
    def _settle(
        by_key: dict[tuple[str, str], RateLimit], settled: Sequence[Settlement], now: float
    ) -> list[tuple[Any, ...]]:
        """Apply finished requests to their limits (token corrections summed per queue and
        model: they add up); the events of rates a 429 lowered."""
        events = []
        sums: dict[tuple[str, str], tuple[int, int]] = {}
        for done in settled:
            if done.used is not None:
                booked, used = sums.get((done.queue, done.model), (0, 0))
                sums[done.queue, done.model] = (booked + done.booked, used + done.used)
            if not done.throttled:
                continue
            for limit in _drawn(by_key, done.queue, done.model):
                before = limit.factor_at(now)
                limit.throttled(done.retry_after, now)
                if limit.factor < before:
                    detail = (
                        f"{_model(limit.model)}: rate {limit.factor:.0%} of the limit after a 429"
                    )
                    events.append((now, "throttled", None, None, limit.queue, None, detail))
        for (queue, model), (booked, used) in sums.items():
            for limit in _drawn(by_key, queue, model):
                limit.correct(booked, used, now)
        return events

    @staticmethod
    def _book(
        by_key: dict[tuple[str, str], RateLimit],
        booked: Sequence[tuple[str, str, int]],
        now: float,
    ) -> list[float]:
        """Book requests in order within each queue and model; their waits, in order."""
        groups: dict[tuple[str, str], list[int]] = {}
        for index, (queue, model, _) in enumerate(booked):
            groups.setdefault((queue, model), []).append(index)
        waits = [0.0] * len(booked)
        for (queue, model), indexes in groups.items():
            sizes = [booked[i][2] for i in indexes]
            for i, wait in zip(
                indexes, book(_drawn(by_key, queue, model), sizes, now), strict=True
            ):
                waits[i] = wait
        return waits

    def limit_status(self, now: float, queue: str | None = None) -> list[LimitStatus]:
        """Each limit (of one queue, or all) with its effective rate, use and waits."""
        now = self._clock(now)
        return [limit.status(now) for limit in self.list_limits(queue)]


def _drawn(by_key: dict[tuple[str, str], RateLimit], queue: str, model: str) -> list[RateLimit]:
    """The limits a request of `model` in `queue` draws from: the queue's, and the model's."""
    keys = {(queue, ""), (queue, model)}
    return [by_key[key] for key in sorted(keys) if key in by_key]


def _model(model: str) -> str:
    return f"model {model}" if model else "all models"


def _what(limit: RateLimit) -> str:
    """An event's words for a limit: `all models: 500 rpm, 200000 tpm`."""
    parts = [f"{limit.rpm} rpm" if limit.rpm else "", f"{limit.tpm} tpm" if limit.tpm else ""]
    return f"{_model(limit.model)}: {', '.join(p for p in parts if p)}"
