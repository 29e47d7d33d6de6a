-- v16: tags on jobs and batches (`enqueue --tag`, `submit --tag`, the `tag:` filter).
-- One row per (tag, job): the primary key is the index a `tag:x` filter walks to find its
-- jobs at a million rows; the second index finds a job's tags (detail views, prune).
-- Tags go with their job or batch (ON DELETE CASCADE), so `prune` never leaves one behind.
CREATE TABLE job_tags (
    tag    TEXT NOT NULL,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, job_id)
) WITHOUT ROWID;
CREATE INDEX job_tags_job ON job_tags (job_id);

CREATE TABLE batch_tags (
    tag      TEXT NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, batch_id)
) WITHOUT ROWID;
CREATE INDEX batch_tags_batch ON batch_tags (batch_id);

-- `prune` deletes finished jobs with the batch lines that ran them: this index finds a
-- job's line, where the foreign-key check of each deleted job would scan every line.
CREATE INDEX batch_items_job ON batch_items (job_id);
