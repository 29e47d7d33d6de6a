-- v10: successes recorded by QA-sampling workers, numbered per queue, so `--qa-every N`
-- judges every Nth success of the queue across all workers and hosts.
CREATE TABLE qa_success_counts (
    queue     TEXT PRIMARY KEY REFERENCES queues(name),
    succeeded INTEGER NOT NULL
) WITHOUT ROWID;
