"""Rate limits on every store back end: buckets refill by time, bookings are atomic across
connections, usage corrects the tokens booked, a 429 halves the rate and it recovers.

Times are real (PostgreSQL judges by its own clock), so rates are chosen to make each
wait a fraction of a second.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from batchdash.core.db.ports import SyncStore, Tx
from batchdash.core.ratelimit import LimitStatus, Settlement
from tests.conftest import wait_until
from tests.contract.backends import Backend


def _limit(
    backend: Backend,
    rpm: int | None = None,
    tpm: int | None = None,
    model: str = "",
    cooldown: float = 10.0,
) -> None:
    def run(tx: Tx) -> None:
        tx.queues.ensure_queue("q", time.time())
        tx.limits.set_limit("q", model, rpm, tpm, cooldown, time.time())

    with backend.open_sync() as store:
        store.write(run)


def _reserve(store: SyncStore, tokens: int = 1, model: str = "m") -> float:
    return store.write(lambda tx: tx.limits.reserve("q", model, tokens, time.time()))


def _status(backend: Backend) -> LimitStatus:
    with backend.open_sync() as store:
        (status,) = store.read(lambda tx: tx.limits.limit_status(time.time(), "q"))
    return status


def test_a_full_bucket_grants_one_seconds_burst_then_spaces_requests(backend: Backend) -> None:
    _limit(backend, rpm=120)  # 2 a second, a burst of 2
    with backend.open_sync() as store:
        waits = [_reserve(store) for _ in range(4)]
        assert waits[:2] == [0.0, 0.0]
        assert 0.3 < waits[2] <= 0.5 and waits[2] + 0.3 < waits[3] <= 1.0
        status = _status(backend)
        assert (status.used_rpm, status.waits, status.waiting) == (4, 2, 2)
        assert status.wait_max == pytest.approx(waits[3], abs=0.01)
        time.sleep(2.1)  # the debt of 2 and a burst of 2 refill within 2 s
        assert [_reserve(store) for _ in range(2)] == [0.0, 0.0]
        assert _status(backend).waiting == 0


def test_unlimited_queues_and_other_queues_are_not_booked(backend: Backend) -> None:
    _limit(backend, rpm=60)
    with backend.open_sync() as store:
        assert store.read(lambda tx: tx.limits.limited_queues()) == frozenset({"q"})
        free = [store.write(lambda tx: tx.limits.reserve("free", "m", 1, time.time()))]
        free.append(store.write(lambda tx: tx.limits.reserve("free", "m", 1, time.time())))
        assert free == [0.0, 0.0]


def test_bookings_from_many_connections_are_atomic(backend: Backend) -> None:
    _limit(backend, rpm=60)  # one a second, a burst of 1

    def book(_: int) -> list[float]:
        with backend.open_sync() as store:
            return [_reserve(store) for _ in range(5)]

    with ThreadPoolExecutor(4) as pool:
        waits = sorted(w for ws in pool.map(book, range(4)) for w in ws)
    # 20 bookings, each its own slot one second after the one before: none shares a slot.
    assert waits[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert all(0.7 < gap < 1.3 for gap in gaps), waits
    assert _status(backend).used_rpm == 20


def test_tokens_booked_are_corrected_from_usage(backend: Backend) -> None:
    _limit(backend, tpm=6000)  # 100 tokens a second, a bucket of 100
    with backend.open_sync() as store:
        assert _reserve(store, 100) == 0.0
        store.write(lambda tx: tx.limits.correct("q", "m", 100, 10, time.time()))
        assert _reserve(store, 100) < 0.3  # 90 came back: without them it would be 1 s
        assert _status(backend).used_tpm == 110


def test_a_model_limit_and_the_queue_limit_both_apply(backend: Backend) -> None:
    _limit(backend, rpm=6000)
    _limit(backend, rpm=60, model="slow")
    with backend.open_sync() as store:
        assert _reserve(store, model="slow") == 0.0
        assert _reserve(store, model="slow") > 0.5
        assert _reserve(store, model="fast") == 0.0
        limits = store.read(lambda tx: tx.limits.list_limits("q"))
    assert [(x.model, x.cur_requests) for x in limits] == [("", 3), ("slow", 2)]


def test_a_429_halves_the_rate_once_per_cooldown_and_it_recovers(backend: Backend) -> None:
    _limit(backend, rpm=600, cooldown=0.3)
    with backend.open_sync() as store:
        for _ in range(3):  # 429s of requests in flight together halve it once
            store.write(lambda tx: tx.limits.note_throttled("q", "m", None, time.time()))
        status = _status(backend)
        assert status.factor == 0.5 and status.throttled_until is not None
        # Halved, the bucket holds half a second's burst: 5 requests, then 5 a second.
        waits = [_reserve(store) for _ in range(7)]
        assert waits[:5] == [0.0] * 5 and 0.15 < waits[6] <= 0.45
    # +10% of the limit every cooldown: back to the limit within 6 cooldowns.
    wait_until(lambda: not _status(backend).throttled, timeout=5, what="recovery")
    assert _status(backend).factor == 1.0


def test_retry_after_keeps_the_rate_down_at_least_that_long(backend: Backend) -> None:
    _limit(backend, rpm=600, cooldown=0.1)
    with backend.open_sync() as store:
        before = time.time()
        store.write(lambda tx: tx.limits.note_throttled("q", "", 30.0, time.time()))
    status = _status(backend)
    assert status.factor == 0.5
    assert status.throttled_until is not None and status.throttled_until >= before + 29


def test_limits_survive_reopening_and_clear_removes_them(backend: Backend) -> None:
    _limit(backend, rpm=100, tpm=5000)
    _limit(backend, rpm=50, model="x")
    _limit(backend, rpm=200)  # changing a limit keeps one row
    with backend.open_sync() as store:
        limits = store.read(lambda tx: tx.limits.list_limits())
        assert [(x.model, x.rpm, x.tpm) for x in limits] == [("", 200, None), ("x", 50, None)]
        assert store.write(lambda tx: tx.limits.clear_limit("q", "x", time.time())) == 1
        assert store.write(lambda tx: tx.limits.clear_limit("q", None, time.time())) == 1
        assert store.write(lambda tx: tx.limits.clear_limit("q", None, time.time())) == 0
        assert store.read(lambda tx: tx.limits.limited_queues()) == frozenset()
        kinds = [e.kind for e in store.read(lambda tx: tx.events.list_events(None))]
    assert kinds.count("limit_set") == 3 and kinds.count("limit_cleared") == 2


@pytest.mark.parametrize("model", ["", "m"])
def test_a_request_bigger_than_the_bucket_goes_when_it_is_full(
    backend: Backend, model: str
) -> None:
    _limit(backend, tpm=600, model=model)  # a bucket of 10 tokens
    with backend.open_sync() as store:
        assert _reserve(store, 1000) == 0.0
        assert _reserve(store, 1) > 90  # the big one is paid back at 10 tokens a second


def test_a_workers_exchange_settles_then_books_in_one_call(backend: Backend) -> None:
    _limit(backend, rpm=120, tpm=6000)  # 2 requests and 100 tokens a second
    with backend.open_sync() as store:
        assert _reserve(store, 100) == 0.0
        settled = [
            Settlement("q", "m", 100, 40),  # 60 tokens come back
            Settlement("q", "m", 0, None, throttled=True, retry_after=None),
        ]
        booked = [("q", "m", 50), ("q", "other", 10), ("free", "m", 10)]
        waits = store.write(lambda tx: tx.limits.settle_and_reserve(settled, booked, time.time()))
        # Halved: a burst of 1 request, 50 tokens; the 60 returned tokens pay the first.
        assert waits[0] == 0.0 and 0.5 < waits[1] <= 1.0 and waits[2] == 0.0
        status = _status(backend)
    assert (status.factor, status.used_rpm, status.used_tpm) == (0.5, 3, 100)
