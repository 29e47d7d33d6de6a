"""Rate limits shared by every worker: token buckets kept in the store, refilled by time.

A queue may have one limit for all its models (model '') and one per model; a request
draws from both. Each limit has a requests bucket (`rpm`) and a tokens bucket (`tpm`), either
optional. A bucket holds at most `BURST_SECONDS` of its rate (at least one request) and
refills continuously.

Booking ahead: `RateLimit.book` always takes the request's share and says how long the
caller must wait before sending it (0: at once). A bucket may go below zero: its debt is the
requests already booked for later, so waiting callers are spaced at the limit's rate with
no retries, no thundering herd, and no idle gap while budget is available. Jobs started by
time T never exceed `burst + rate × T`.

Tokens are booked from `core.estimate` (input ≈ chars/4, plus the output bound) and
`correct`ed from the response's usage: the difference goes back to (or is taken from) the
bucket.

Adaptive 429: a rate-limit answer halves the effective rate (`factor`, at most once per
`cooldown`, never below `MIN_FACTOR`) for max(retry-after, cooldown); after that it
recovers by `RECOVERY_STEP` of the limit every `cooldown` until it is back at the limit.
Every time is the store's clock (`tx.stats.clock`), so hosts agree on PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds of its rate a full bucket holds (the largest burst after an idle spell).
BURST_SECONDS = 1.0
#: Default seconds a 429 keeps the rate halved, and between recovery steps.
DEFAULT_COOLDOWN = 10.0
#: Fraction of the limit the effective rate regains per cooldown after a throttle.
RECOVERY_STEP = 0.1
#: The effective rate never falls below this fraction of the limit.
MIN_FACTOR = 1 / 64
#: Seconds of the use and wait windows (`current use` is per minute).
WINDOW = 60.0
#: Error kinds of a provider's rate-limit answer (OpenAI's and the simulator's HTTP status,
#: Anthropic's error type).
THROTTLE_KINDS = frozenset({"http_429", "rate_limit_error"})


@dataclass(slots=True)
class RateLimit:
    """One stored limit of a queue (and model, '' = all its models) with its buckets' state.

    `requests` and `tokens` are bucket levels at `refilled_at`; negative levels are
    booked ahead. `cur_*` count what was booked in the window starting at `window_at`,
    `prev_*` the window before it.
    """

    queue: str
    model: str
    rpm: int | None
    tpm: int | None
    cooldown: float = DEFAULT_COOLDOWN
    requests: float = 0.0
    tokens: float = 0.0
    refilled_at: float = 0.0
    factor: float = 1.0
    throttled_at: float = 0.0
    throttled_until: float = 0.0
    window_at: float = 0.0
    cur_requests: int = 0
    cur_tokens: int = 0
    cur_waits: int = 0
    cur_wait_max: float = 0.0
    prev_requests: int = 0
    prev_tokens: int = 0
    prev_waits: int = 0
    prev_wait_max: float = 0.0

    # ------------------------------------------------------------------ rates

    def factor_at(self, now: float) -> float:
        """The fraction of the limit in force at `now` (1.0 unless a 429 lowered it)."""
        if now < self.throttled_until:
            return self.factor
        steps = 1 + int((now - self.throttled_until) / self.cooldown)
        return min(1.0, self.factor + RECOVERY_STEP * steps)

    def _rates(self, now: float) -> tuple[float, float]:
        """(requests, tokens) per second at `now`; 0 for a dimension without a limit."""
        factor = self.factor_at(now)
        return (self.rpm or 0) * factor / 60, (self.tpm or 0) * factor / 60

    @staticmethod
    def _capacity(rate: float) -> float:
        return max(1.0, rate * BURST_SECONDS)

    def refill(self, now: float) -> None:
        """Bring both buckets up to `now` (an earlier `now`, from a clock behind, adds none)."""
        now = max(now, self.refilled_at)
        elapsed = now - self.refilled_at
        per_request, per_token = self._rates(now)
        self.requests = min(self._capacity(per_request), self.requests + elapsed * per_request)
        self.tokens = min(self._capacity(per_token), self.tokens + elapsed * per_token)
        self.refilled_at = now

    # ------------------------------------------------------------------ booking

    def record(self, sizes: Sequence[int], waits: Sequence[float], now: float) -> None:
        """Count booked requests (their tokens, who waited and how long) in the use window."""
        self._roll(now)
        self.cur_requests += len(sizes)
        self.cur_tokens += sum(sizes)
        waited = [wait for wait in waits if wait > 0]
        self.cur_waits += len(waited)
        self.cur_wait_max = max([self.cur_wait_max, *waited])

    def correct(self, booked: int, used: int, now: float) -> None:
        """Give back (or take more of) the tokens a request booked, once its usage is known
        (after `refill(now)`)."""
        if self.tpm:
            self.tokens = min(self._capacity(self._rates(now)[1]), self.tokens + booked - used)
        self._roll(now)
        self.cur_tokens = max(0, self.cur_tokens + used - booked)

    def throttled(self, retry_after: float | None, now: float) -> None:
        """The provider answered 429: halve the rate (once per cooldown) for a while."""
        self.refill(now)
        current = self.factor_at(now)
        if now - self.throttled_at >= self.cooldown:
            current = max(MIN_FACTOR, current / 2)
            self.throttled_at = now
        self.factor = current
        hold = max(retry_after or 0.0, self.cooldown)
        self.throttled_until = max(self.throttled_until, now + hold)
        per_request, per_token = self._rates(now)
        self.requests = min(self.requests, self._capacity(per_request))
        self.tokens = min(self.tokens, self._capacity(per_token))

    def _roll(self, now: float) -> None:
        """Start a new use window when the current one is over."""
        age = now - self.window_at
        if age < WINDOW:
            return
        fresh = age < 2 * WINDOW  # else the previous window saw nothing either
        self.prev_requests = self.cur_requests if fresh else 0
        self.prev_tokens = self.cur_tokens if fresh else 0
        self.prev_waits = self.cur_waits if fresh else 0
        self.prev_wait_max = self.cur_wait_max if fresh else 0.0
        self.cur_requests = self.cur_tokens = self.cur_waits = 0
        self.cur_wait_max = 0.0
        self.window_at += WINDOW * (age // WINDOW)  # windows stay aligned to their start

    # ------------------------------------------------------------------ reading

    def status(self, now: float) -> LimitStatus:
        """What the limit looks like at `now` (read-only: this copy is refilled, not stored)."""
        self.refill(now)
        self._roll(now)
        # The sliding-window estimate: all of this window, the unexpired part of the last.
        weight = max(0.0, 1.0 - (now - self.window_at) / WINDOW)
        factor = self.factor_at(now)
        return LimitStatus(
            queue=self.queue,
            model=self.model,
            rpm=self.rpm,
            tpm=self.tpm,
            factor=factor,
            throttled_until=self.throttled_until if factor < 1.0 else None,
            used_rpm=round(self.cur_requests + self.prev_requests * weight),
            used_tpm=round(self.cur_tokens + self.prev_tokens * weight),
            waiting=math.ceil(-self.requests) if self.rpm and self.requests < 0 else 0,
            waits=self.cur_waits + self.prev_waits,
            wait_max=max(self.cur_wait_max, self.prev_wait_max),
        )


def book(limits: Sequence[RateLimit], sizes: Sequence[int], now: float) -> list[float]:
    """Book requests of `sizes` tokens one after another on every limit they draw from (each
    refilled to `now`); returns each one's wait: the longest any of its limits asks.

    A bucket lets a request go once it holds one request and its tokens (at most a full
    bucket's worth: a bigger request goes when the bucket is full and leaves it in debt).
    """
    plans = []
    for limit in limits:
        per_request, per_token = limit._rates(now)
        plans.append((limit, per_request, per_token, limit._capacity(per_token)))
    if all(_holds(plan, len(sizes), sum(sizes)) for plan in plans):
        waits = [0.0] * len(sizes)  # the usual case under a limit: no one waits
        for limit, per_request, per_token, _ in plans:
            limit.requests -= len(sizes) if per_request else 0
            limit.tokens -= sum(sizes) if per_token else 0
    else:
        waits = [_book_one(plans, size) for size in sizes]
    for limit in limits:
        limit.record(sizes, waits, now)
    return waits


def _holds(plan: tuple[RateLimit, float, float, float], requests: int, tokens: int) -> bool:
    """Whether a limit's buckets hold all these requests and tokens at once (none waits:
    each request finds at least its own share left); a dimension without a rate holds all."""
    limit, per_request, per_token, _ = plan
    return (not per_request or limit.requests >= requests) and (
        not per_token or limit.tokens >= tokens
    )


def _book_one(plans: Sequence[tuple[RateLimit, float, float, float]], size: int) -> float:
    """Book one request of `size` tokens on every planned limit; its wait."""
    wait = 0.0
    for limit, per_request, per_token, capacity in plans:
        if per_request:
            wait = max(wait, (1.0 - limit.requests) / per_request)
        if per_token:
            wait = max(wait, (min(size, capacity) - limit.tokens) / per_token)
    for limit, per_request, per_token, _ in plans:
        limit.requests -= 1.0 if per_request else 0.0
        limit.tokens -= size if per_token else 0
    return wait


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished request of a queue's model: the tokens it booked and used (None: usage
    unknown, nothing to correct), and whether the provider answered 429 (with retry-after)."""

    queue: str
    model: str
    booked: int
    used: int | None
    throttled: bool = False
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """A limit as `queue show` and the dashboard present it (use and waits over the last
    minute, `waiting` = requests booked for later right now)."""

    queue: str
    model: str
    rpm: int | None
    tpm: int | None
    factor: float
    throttled_until: float | None
    used_rpm: int
    used_tpm: int
    waiting: int
    waits: int
    wait_max: float

    @property
    def throttled(self) -> bool:
        """A 429 lowered the rate and it has not recovered yet."""
        return self.factor < 1.0
