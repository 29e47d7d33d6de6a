-- Text search off the hot table (issue 12, queue throughput). A claim and a finish change
-- indexed columns of jobs (status, updated_at, attempts), so each is a non-HOT update that
-- adds an entry to every index of jobs: the trigram GIN index on `key` too, though a key
-- never changes (~12 µs of a no-op job's ~70 µs of server CPU). The keys' trigrams now live
-- in job_keys, written once, when a job is inserted; text and key filters look keys up
-- there (sqlshared's ILIKE forms). The error's trigram index stays on jobs: it is partial
-- (error IS NOT NULL), so a claim and a success, which leave no error, skip it.
CREATE TABLE job_keys (
    job_id bigint PRIMARY KEY,
    key    text COLLATE "C" NOT NULL
);

-- Kept by triggers, so every way a job is inserted or deleted (enqueue, batch ingest,
-- prune) keeps it: statement-level ones, one insert or delete per statement over the
-- transition table (a foreign key would check each row on its own). No writer changes a
-- key; the row trigger is the guard that would keep one in step, and claims and finishes,
-- which never name `key` in their SET, do not even test its WHEN.
CREATE FUNCTION job_keys_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_keys (job_id, key) SELECT id, key FROM new_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION job_keys_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_keys k USING old_rows o WHERE k.job_id = o.id;
    RETURN NULL;
END $$;

CREATE FUNCTION job_keys_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_keys SET key = NEW.key WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER job_keys_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION job_keys_insert();
CREATE TRIGGER job_keys_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION job_keys_delete();
CREATE TRIGGER job_keys_update AFTER UPDATE OF key ON jobs
    FOR EACH ROW WHEN (OLD.key IS DISTINCT FROM NEW.key) EXECUTE FUNCTION job_keys_update();

-- The keys of the jobs already there, with no job written meanwhile.
LOCK TABLE jobs IN SHARE MODE;
INSERT INTO job_keys (job_id, key) SELECT id, key FROM jobs;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX job_keys_trgm ON job_keys USING gin (key gin_trgm_ops)';
    END IF;
END $$;
DROP INDEX IF EXISTS jobs_key_trgm;
