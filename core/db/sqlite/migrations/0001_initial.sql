-- v1: the whole model; later issues add columns through new entries, never edits.
CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    qa_rubric   TEXT
);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    queue            TEXT NOT NULL REFERENCES queues(name),
    key              TEXT NOT NULL,
    handler          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    run_after        REAL NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    worker_id        TEXT,
    claim_token      TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,
    error            TEXT,
    error_kind       TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    cost             REAL,
    batch_id         INTEGER REFERENCES batches(id),
    UNIQUE (queue, key)
);
-- What a worker claims next: local pending jobs in priority order.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_after, id)
    WHERE status = 'pending' AND batch_id IS NULL;
-- One page of jobs by status (and queue) and time, newest first.
CREATE INDEX jobs_status_time ON jobs (status, updated_at);
CREATE INDEX jobs_queue_status_time ON jobs (queue, status, updated_at);
-- Running jobs by lease expiry, for rescue.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'running';
-- Throughput over the last minutes.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_worker ON jobs (worker_id) WHERE worker_id IS NOT NULL;

CREATE TABLE job_counts (
    queue         TEXT NOT NULL,
    status        TEXT NOT NULL,
    n             INTEGER NOT NULL DEFAULT 0,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost          REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, status)
) WITHOUT ROWID;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (queue, status, n, input_tokens, output_tokens, cost)
    VALUES (new.queue, new.status, 1, coalesce(new.input_tokens, 0),
            coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
    ON CONFLICT (queue, status) DO UPDATE SET
        n = n + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost = cost + excluded.cost;
END;
CREATE TRIGGER jobs_count_update
AFTER UPDATE OF status, input_tokens, output_tokens, cost ON jobs BEGIN
    UPDATE job_counts SET
        n = n - 1,
        input_tokens = input_tokens - coalesce(old.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0)
    WHERE queue = old.queue AND status = old.status;
    INSERT INTO job_counts (queue, status, n, input_tokens, output_tokens, cost)
    VALUES (new.queue, new.status, 1, coalesce(new.input_tokens, 0),
            coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
    ON CONFLICT (queue, status) DO UPDATE SET
        n = n + 1,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost = cost + excluded.cost;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET
        n = n - 1,
        input_tokens = input_tokens - coalesce(old.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0)
    WHERE queue = old.queue AND status = old.status;
END;

CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    at        REAL NOT NULL,
    kind      TEXT NOT NULL,
    job_id    INTEGER,
    batch_id  INTEGER,
    queue     TEXT,
    worker_id TEXT,
    detail    TEXT
);
CREATE INDEX events_job ON events (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX events_batch ON events (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE workers (
    id                 TEXT PRIMARY KEY,
    host               TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    started_at         REAL NOT NULL,
    heartbeat_at       REAL NOT NULL,
    heartbeat_interval REAL NOT NULL,
    state              TEXT NOT NULL,
    queues             TEXT NOT NULL DEFAULT '[]',
    handler            TEXT NOT NULL DEFAULT '',
    concurrency        INTEGER NOT NULL DEFAULT 1,
    current_jobs       TEXT NOT NULL DEFAULT '[]',
    done               INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    stopped_at         REAL
);
CREATE INDEX workers_heartbeat ON workers (heartbeat_at);

CREATE TABLE batches (
    id               INTEGER PRIMARY KEY,
    provider         TEXT NOT NULL DEFAULT 'openai',
    remote_id        TEXT UNIQUE,
    submit_key       TEXT UNIQUE,
    queue            TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    model            TEXT,
    input_path       TEXT,
    input_file_id    TEXT,
    output_file_id   TEXT,
    error_file_id    TEXT,
    raw_status       TEXT,
    state            TEXT NOT NULL,
    total            INTEGER NOT NULL DEFAULT 0,
    completed        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    errors           TEXT,
    metadata         TEXT,
    parent_id        INTEGER REFERENCES batches(id),
    shard_index      INTEGER,
    shard_count      INTEGER,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    remote_created_at REAL,
    in_progress_at   REAL,
    expires_at       REAL,
    finalizing_at    REAL,
    completed_at     REAL,
    failed_at        REAL,
    expired_at       REAL,
    cancelling_at    REAL,
    cancelled_at     REAL,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0,
    poll_error       TEXT,
    polled_at        REAL,
    next_poll_at     REAL,
    poll_failures    INTEGER NOT NULL DEFAULT 0,
    ingested_at      REAL
);
CREATE INDEX batches_active ON batches (next_poll_at)
    WHERE state IN ('submitting', 'validating', 'running', 'finalizing', 'cancelling',
                    'unknown');
CREATE INDEX batches_created ON batches (created_at);

CREATE TABLE batch_items (
    batch_id      INTEGER NOT NULL REFERENCES batches(id),
    custom_id     TEXT NOT NULL,
    job_id        INTEGER REFERENCES jobs(id),
    line_no       INTEGER,
    outcome       TEXT NOT NULL DEFAULT 'pending',
    status_code   INTEGER,
    error_code    TEXT,
    error_message TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost          REAL,
    PRIMARY KEY (batch_id, custom_id)
) WITHOUT ROWID;
CREATE INDEX batch_items_outcome ON batch_items (batch_id, outcome);

CREATE TABLE qa_results (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs(id),
    judge         TEXT NOT NULL,
    overall       REAL,
    comment       TEXT,
    error         TEXT,
    raw           TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost          REAL,
    batch_id      INTEGER REFERENCES batches(id),
    created_at    REAL NOT NULL,
    UNIQUE (job_id, judge)
);
CREATE INDEX qa_results_overall ON qa_results (overall) WHERE overall IS NOT NULL;

CREATE TABLE qa_scores (
    result_id INTEGER NOT NULL REFERENCES qa_results(id) ON DELETE CASCADE,
    dimension TEXT NOT NULL,
    score     REAL NOT NULL,
    PRIMARY KEY (result_id, dimension)
) WITHOUT ROWID;
