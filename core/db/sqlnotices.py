"""The notices repository, written once for both back ends (shared SQL with `?`
placeholders, converted by the back end's `sql` function; see `core/db/sqlevents.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from batchdash.core.db.sqlshared import TERMINAL_BATCH_STATES_SQL, SharedSqlRepository, _batch
from batchdash.core.models import Batch

#: Ids checked per statement: well under SQLite's and psycopg's parameter limits.
_CHUNK = 500

_INSERT_SENT = (
    "INSERT INTO notices_sent (channel, notice_id, sent_at, baseline) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (channel, notice_id) DO NOTHING"
)


class SqlNotices(SharedSqlRepository):
    """Delivery memory on one connection (sqlite3 or psycopg: both `execute` alike)."""

    def start_channel(self, channel: str, baseline: Sequence[str], now: float) -> bool:
        """Record a new channel with `baseline` (what is already true) as never to be sent.

        Returns False, changing nothing, when the channel already exists.
        """
        inserted = self._conn.execute(
            self._sql(
                "INSERT INTO notice_channels (channel, started_at) VALUES (?, ?) "
                "ON CONFLICT (channel) DO NOTHING RETURNING channel"
            ),
            (channel, now),
        ).fetchone()
        if inserted is None:
            return False
        self._insert(channel, baseline, now, baseline=True)
        return True

    def channel_started(self, channel: str) -> float | None:
        """When the channel first ran, or None for a channel never started."""
        row = self._conn.execute(
            self._sql("SELECT started_at FROM notice_channels WHERE channel = ?"), (channel,)
        ).fetchone()
        return None if row is None else float(row["started_at"])

    def unsent(self, channel: str, ids: Sequence[str]) -> list[str]:
        """Those of `ids` the channel has neither sent nor taken as baseline, in order."""
        known: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT notice_id FROM notices_sent WHERE channel = ? AND notice_id IN ({marks})"
            known.update(
                r["notice_id"] for r in self._conn.execute(self._sql(sql), [channel, *chunk])
            )
        return [i for i in ids if i not in known]

    def mark_sent(self, channel: str, ids: Sequence[str], now: float) -> None:
        """Remember that the channel delivered these ids (again is harmless)."""
        self._insert(channel, ids, now, baseline=False)

    def ended_batches(self, since: float, limit: int) -> list[Batch]:
        """Batches in a terminal state whose results came in at `since` or later, the
        latest `limit` of them: the batch endings that are news."""
        sql = (
            "SELECT * FROM batches WHERE ingested_at >= ? "
            f"AND state IN {TERMINAL_BATCH_STATES_SQL} ORDER BY ingested_at DESC, id DESC LIMIT ?"
        )
        return [_batch(r) for r in self._conn.execute(self._sql(sql), (since, limit))]

    def _insert(self, channel: str, ids: Sequence[str], now: float, *, baseline: bool) -> None:
        if ids:
            rows = [(channel, notice_id, now, baseline) for notice_id in ids]
            self._conn.cursor().executemany(self._sql(_INSERT_SENT), rows)
