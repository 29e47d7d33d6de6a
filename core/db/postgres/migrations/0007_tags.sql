-- Tags on jobs and batches (SQLite's migration 0016): `enqueue --tag`, `submit --tag`, the
-- `tag:` filter. The primary key (tag, id) is the index a `tag:x` filter walks to find its
-- jobs at millions of rows; the second index finds one job's (or batch's) tags. Tags go
-- with their job or batch (ON DELETE CASCADE), so `prune` never leaves one behind.
CREATE TABLE job_tags (
    tag    text COLLATE "C" NOT NULL,
    job_id bigint NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, job_id)
);
CREATE INDEX job_tags_job ON job_tags (job_id);

CREATE TABLE batch_tags (
    tag      text COLLATE "C" NOT NULL,
    batch_id bigint NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    PRIMARY KEY (tag, batch_id)
);
CREATE INDEX batch_tags_batch ON batch_tags (batch_id);

-- `prune` deletes finished jobs with the batch lines that ran them: this index finds a
-- job's line, where the foreign-key check of each deleted job would scan every line.
CREATE INDEX batch_items_job ON batch_items (job_id);
