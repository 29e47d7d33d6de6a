-- Fewer index entries per claim and finish (issue 12, queue throughput). Claims and
-- finishes are non-HOT updates, so each added an entry to every index of jobs: 44% of a
-- no-op job's server CPU was index inserts. Backend CPU per no-op job: 56 → 42 µs.
--
-- 1. Running jobs leave the status-led indexes. The dashboard never walks their running
--    run: running jobs are the ones workers hold (remote batch lines wait as pending), at
--    most the workers' slots, and `jobs_lease` (WHERE status = 'running') finds them all
--    for a sort of a few hundred rows. Three fewer index entries per claim (56 → 48 µs).
--
--    A query uses a partial index only when its WHERE implies `status <> 'running'`: a
--    status filter does (`status IN ('failed')`, planned with its values; the generic plan of
--    a prepared one cannot see them, costs more, and is never chosen), and job_pages
--    merges per-status runs for the orders these indexes serve.
CREATE INDEX jobs_status_time_settled ON jobs (status, updated_at) WHERE status <> 'running';
CREATE INDEX jobs_queue_status_time_settled ON jobs (queue, status, updated_at)
    WHERE status <> 'running';
CREATE INDEX jobs_status_attempts_settled ON jobs (status, attempts DESC, id)
    WHERE status <> 'running';
DROP INDEX jobs_status_time;
DROP INDEX jobs_queue_status_time;
DROP INDEX jobs_status_attempts;
ALTER INDEX jobs_status_time_settled RENAME TO jobs_status_time;
ALTER INDEX jobs_queue_status_time_settled RENAME TO jobs_queue_status_time;
ALTER INDEX jobs_status_attempts_settled RENAME TO jobs_status_attempts;

-- 2. Keys are unique in job_search, not in jobs. The (queue, key) uniqueness index of jobs
--    took an entry, and a uniqueness check, on every claim and finish, though a key never
--    changes (56 → 48 µs alone). job_search's row is written when the job is inserted (and
--    when its error changes), so the index moves there with the queue beside the key. An
--    insert of a key the queue already has now fails in the insert trigger: writers look
--    keys up in job_search first, and a concurrent insert of the same key, the one case
--    that lookup misses, is retried by the writer (PgJobs.enqueue, add_batch_lines), whose
--    second look then finds the committed key. Sorting by key walks this index too.
LOCK TABLE jobs IN SHARE MODE;
ALTER TABLE job_search ADD COLUMN queue text COLLATE "C";
UPDATE job_search s SET queue = j.queue FROM jobs j WHERE j.id = s.job_id;
ALTER TABLE job_search ALTER COLUMN queue SET NOT NULL;
ALTER TABLE job_search ADD CONSTRAINT job_search_queue_key UNIQUE (queue, key);
ALTER TABLE jobs DROP CONSTRAINT jobs_queue_key_key;

CREATE OR REPLACE FUNCTION job_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_search (job_id, queue, key, error) SELECT id, queue, key, error FROM new_rows;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION job_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_search SET queue = NEW.queue, key = NEW.key, error = NEW.error
    WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

DROP TRIGGER job_search_update ON jobs;
CREATE TRIGGER job_search_update AFTER UPDATE OF queue, key, error ON jobs FOR EACH ROW
    WHEN (OLD.queue IS DISTINCT FROM NEW.queue OR OLD.key IS DISTINCT FROM NEW.key
          OR OLD.error IS DISTINCT FROM NEW.error)
    EXECUTE FUNCTION job_search_update();
