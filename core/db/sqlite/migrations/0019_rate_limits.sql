-- v16: rate limits shared by every worker (core/ratelimit.py): one row per queue and model
-- ('' = all models of the queue) holding its limits and its token buckets' state, so every
-- worker on every host draws from the same budget and limits survive restarts.
-- `requests`/`tokens` are bucket levels at `refilled_at` (negative: booked ahead);
-- `factor`/`throttled_*` the adaptive state after a 429; `cur_*`/`prev_*` what was booked
-- in the current and previous minute window (use and waits shown by `queue show`).
CREATE TABLE rate_limits (
    queue           TEXT NOT NULL REFERENCES queues(name),
    model           TEXT NOT NULL DEFAULT '',
    rpm             INTEGER,
    tpm             INTEGER,
    cooldown        REAL NOT NULL DEFAULT 10.0,
    requests        REAL NOT NULL DEFAULT 0,
    tokens          REAL NOT NULL DEFAULT 0,
    refilled_at     REAL NOT NULL DEFAULT 0,
    factor          REAL NOT NULL DEFAULT 1.0,
    throttled_at    REAL NOT NULL DEFAULT 0,
    throttled_until REAL NOT NULL DEFAULT 0,
    window_at       REAL NOT NULL DEFAULT 0,
    cur_requests    INTEGER NOT NULL DEFAULT 0,
    cur_tokens      INTEGER NOT NULL DEFAULT 0,
    cur_waits       INTEGER NOT NULL DEFAULT 0,
    cur_wait_max    REAL NOT NULL DEFAULT 0,
    prev_requests   INTEGER NOT NULL DEFAULT 0,
    prev_tokens     INTEGER NOT NULL DEFAULT 0,
    prev_waits      INTEGER NOT NULL DEFAULT 0,
    prev_wait_max   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, model)
);
