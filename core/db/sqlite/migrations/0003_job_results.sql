-- v3: results live beside the jobs, not in them. Finishing a job then rewrites a small
-- row instead of growing it by its ~2 KB result next to its payload (batch ingestion
-- wrote and checkpointed every page twice). Rows go in arrival order (own rowid), so
-- results that arrive in random job order still append to the table.
CREATE TABLE job_results (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
    result TEXT NOT NULL
);
INSERT INTO job_results (job_id, result)
    SELECT id, result FROM jobs WHERE result IS NOT NULL ORDER BY id;
ALTER TABLE jobs DROP COLUMN result;
