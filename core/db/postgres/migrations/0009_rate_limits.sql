-- Rate limits shared by every worker on every host (SQLite's migration 0016; see there and
-- core/ratelimit.py). Workers book from a row under `SELECT … FOR UPDATE`, times are the
-- server's clock (batchdash_now()).
CREATE TABLE rate_limits (
    queue           text COLLATE "C" NOT NULL REFERENCES queues(name),
    model           text COLLATE "C" NOT NULL DEFAULT '',
    rpm             bigint,
    tpm             bigint,
    cooldown        double precision NOT NULL DEFAULT 10.0,
    requests        double precision NOT NULL DEFAULT 0,
    tokens          double precision NOT NULL DEFAULT 0,
    refilled_at     double precision NOT NULL DEFAULT 0,
    factor          double precision NOT NULL DEFAULT 1.0,
    throttled_at    double precision NOT NULL DEFAULT 0,
    throttled_until double precision NOT NULL DEFAULT 0,
    window_at       double precision NOT NULL DEFAULT 0,
    cur_requests    bigint NOT NULL DEFAULT 0,
    cur_tokens      bigint NOT NULL DEFAULT 0,
    cur_waits       bigint NOT NULL DEFAULT 0,
    cur_wait_max    double precision NOT NULL DEFAULT 0,
    prev_requests   bigint NOT NULL DEFAULT 0,
    prev_tokens     bigint NOT NULL DEFAULT 0,
    prev_waits      bigint NOT NULL DEFAULT 0,
    prev_wait_max   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, model)
);
