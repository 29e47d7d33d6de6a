-- Text search off the hot table (issue 12, queue throughput). A claim and a finish change
-- indexed columns of jobs (status, updated_at, attempts), so each is a non-HOT update that
-- adds an entry to every index of jobs: the trigram GIN index on `key` too, though a key
-- never changes (~8 µs of a no-op job's ~75 µs of server CPU). The searched texts, key and
-- error, are copied into job_search, whose row is written when a job is inserted and again
-- only when its key or error changes (a failure, a retry, the claim after a failure); text
-- and key filters look the ids up there (sqlshared's ILIKE forms). One table holds both so
-- a free-text filter is still one bitmap OR of the two trigram indexes, and its ids are the
-- table's key, which lets a page or a capped count stream the matches instead of first
-- collecting all of them (a union of ids from two tables made the 1M-job refresh 0.4 s).
CREATE TABLE job_search (
    job_id bigint PRIMARY KEY,
    key    text COLLATE "C" NOT NULL,
    error  text
);

-- Kept by triggers, so every way a job is written (enqueue, batch ingest, finish, rescue,
-- retry, prune) keeps it. Inserts and deletes: statement-level, one statement over the
-- transition table (a foreign key would check each row on its own). Updates: a row trigger
-- that fires only for a changed key or error; its WHEN is tested only for statements that
-- name one of them in their SET.
CREATE FUNCTION job_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_search (job_id, key, error) SELECT id, key, error FROM new_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION job_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_search s USING old_rows o WHERE s.job_id = o.id;
    RETURN NULL;
END $$;

CREATE FUNCTION job_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE job_search SET key = NEW.key, error = NEW.error WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER job_search_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION job_search_insert();
CREATE TRIGGER job_search_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION job_search_delete();
CREATE TRIGGER job_search_update AFTER UPDATE OF key, error ON jobs FOR EACH ROW
    WHEN (OLD.key IS DISTINCT FROM NEW.key OR OLD.error IS DISTINCT FROM NEW.error)
    EXECUTE FUNCTION job_search_update();

-- The texts of the jobs already there, with no job written meanwhile.
LOCK TABLE jobs IN SHARE MODE;
INSERT INTO job_search (job_id, key, error) SELECT id, key, error FROM jobs;

-- Migration 0003's indexes, moved (without pg_trgm the filters scan job_search instead).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX job_search_key_trgm ON job_search USING gin (key gin_trgm_ops)';
        EXECUTE 'CREATE INDEX job_search_error_trgm ON job_search USING gin '
                '(error gin_trgm_ops) WHERE error IS NOT NULL';
    END IF;
END $$;
DROP INDEX IF EXISTS jobs_key_trgm;
DROP INDEX IF EXISTS jobs_error_trgm;
