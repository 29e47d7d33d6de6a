-- v16: stages and progress reported from inside a job (issue 14, part 3).
-- `stage`, `progress` (0..1) and `progress_note` are a running job's latest report; a claim
-- clears them, the end of an attempt keeps them (how far a failed job got).
-- `job_stages` holds one row per run of a stage in an attempt (the `stage_*` events tell
-- the same on the timeline); a rescued attempt's rows stay beside the next attempt's.
ALTER TABLE jobs ADD COLUMN stage TEXT;
ALTER TABLE jobs ADD COLUMN progress REAL;
ALTER TABLE jobs ADD COLUMN progress_note TEXT;
CREATE TABLE job_stages (
    job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    queue      TEXT NOT NULL,
    name       TEXT NOT NULL,
    started_at REAL NOT NULL,
    status     TEXT NOT NULL,
    duration   REAL,
    error      TEXT,
    PRIMARY KEY (job_id, attempt, seq)
);
CREATE INDEX job_stages_queue ON job_stages (queue, name);
