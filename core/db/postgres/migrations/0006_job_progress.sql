-- v6: stages and progress reported from inside a job (issue 14, part 3).
-- `stage`, `progress` (0..1) and `progress_note` are a running job's latest report; a claim
-- clears them, the end of an attempt keeps them (how far a failed job got).
-- `job_stages` holds one row per run of a stage in an attempt (the `stage_*` events tell
-- the same on the timeline); a rescued attempt's rows stay beside the next attempt's.
ALTER TABLE jobs ADD COLUMN stage text;
ALTER TABLE jobs ADD COLUMN progress double precision;
ALTER TABLE jobs ADD COLUMN progress_note text;
CREATE TABLE job_stages (
    job_id     bigint NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt    integer NOT NULL,
    seq        integer NOT NULL,
    queue      text NOT NULL,
    name       text NOT NULL,
    started_at double precision NOT NULL,
    status     text NOT NULL,
    duration   double precision,
    error      text,
    PRIMARY KEY (job_id, attempt, seq)
);
CREATE INDEX job_stages_queue ON job_stages (queue, name);
