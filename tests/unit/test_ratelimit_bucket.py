"""The bucket arithmetic on explicit times: booking ahead, recovery steps after a 429,
the floor of repeated 429s, and the use window."""

from __future__ import annotations

import pytest

from batchdash.core.ratelimit import MIN_FACTOR, WINDOW, RateLimit, book


def _full(rpm: int | None = 60, tpm: int | None = None, cooldown: float = 10.0) -> RateLimit:
    limit = RateLimit("q", "", rpm, tpm, cooldown, float("inf"), float("inf"), 0.0)
    limit.refill(0.0)
    return limit


def _book(limit: RateLimit, now: float, tokens: int = 1) -> float:
    limit.refill(now)
    return book([limit], [tokens], now)[0]


def test_bookings_are_spaced_at_the_rate_and_time_pays_the_debt() -> None:
    limit = _full(rpm=60)  # one a second, a burst of one
    assert [_book(limit, 0.0) for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]
    assert _book(limit, 10.0) == 0.0  # the debt of 3 was paid by t=4; full again by t=5


def test_after_a_429_the_rate_recovers_a_tenth_per_cooldown() -> None:
    limit = _full(rpm=600, cooldown=2.0)
    limit.throttled(retry_after=5.0, now=100.0)
    assert limit.factor_at(104.9) == 0.5  # held for the retry-after (longer than cooldown)
    assert [round(limit.factor_at(t), 2) for t in (105.0, 107.0, 109.0, 113.0)] == [
        0.6,
        0.7,
        0.8,
        1.0,
    ]


def test_429s_together_halve_once_and_repeated_ones_stop_at_the_floor() -> None:
    limit = _full(rpm=600, cooldown=1.0)
    for _ in range(5):
        limit.throttled(None, 100.0)
    assert limit.factor == 0.5
    for tick in range(1, 20):
        limit.throttled(None, 100 + tick / 2)  # 429s keep coming: halved again every cooldown
    assert limit.factor == pytest.approx(MIN_FACTOR)


def test_use_is_counted_over_a_sliding_minute() -> None:
    limit = _full(rpm=6000)
    for _ in range(30):
        _book(limit, 1.0)
    assert limit.status(30.0).used_rpm == 30
    # Half way through the next window, half of the last one still counts.
    assert limit.status(WINDOW + WINDOW / 2).used_rpm == 15
    assert limit.status(3 * WINDOW).used_rpm == 0


@pytest.mark.parametrize(
    ("rpm", "tpm", "count"), [(6000, None, 80), (None, 60_000, 80), (600, 6000, 30)]
)
def test_booking_many_at_once_waits_as_booking_them_one_by_one(
    rpm: int | None, tpm: int | None, count: int
) -> None:
    together, alone = _full(rpm=rpm, tpm=tpm), _full(rpm=rpm, tpm=tpm)
    sizes = [7 + i % 5 for i in range(count)]
    for now in (1.0, 1.2, 5.0):  # in and out of the burst: some of each batch wait
        together.refill(now)
        waits = book([together], sizes, now)
        assert waits == pytest.approx([_book(alone, now, size) for size in sizes])
        assert (together.requests, together.tokens) == pytest.approx((alone.requests, alone.tokens))
