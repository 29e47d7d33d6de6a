-- Less server work per job on the queue's hot path (issue 12, queue throughput).
--
-- 1. Text search off the hot table. A claim and a finish change indexed columns of jobs
-- (status, updated_at, attempts), so each is a non-HOT update that adds an entry to every
-- index of jobs: the trigram GIN index on `key` too, though a key never changes (~10 µs of
-- a no-op job's ~65 µs of server CPU). The searched texts, key and error, are copied into
-- job_search, whose row is written when a job is inserted and again only when its key or
-- error changes (a failure, a retry, the claim after a failure); text and key filters look
-- the ids up there (sqlshared's ILIKE forms). One table holds both so a free-text filter is
-- still one bitmap OR of the two trigram indexes, and its ids are the table's key, which
-- lets a page or a capped count stream the matches instead of first collecting all of them
-- (a union of ids from two tables made the 1M-job refresh 0.4 s).
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

-- 2. Count deltas folded less often. The statement triggers of 0001/0005 append each
--    statement's count deltas and then fold all committed deltas into the totals; with
--    claims and finishes of 64 jobs that fold (two DELETE … RETURNING and two upserts)
--    ran twice per 64 jobs. Readers add the deltas to the totals (job_counts,
--    local_finishes), so a few dozen unfolded rows change no figure. 0005's fold, with
--    only its lock condition changed:
CREATE OR REPLACE FUNCTION job_counts_fold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO job_count_deltas (queue, status, n, local_n, input_tokens, output_tokens, cost)
        SELECT queue, status, count(*), count(*) FILTER (WHERE batch_id IS NULL),
               coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
               coalesce(sum(cost), 0)
        FROM new_rows GROUP BY queue, status;
        INSERT INTO local_finish_deltas (second, n)
        SELECT floor(finished_at)::bigint, count(*) FROM new_rows
        WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL AND finished_at IS NOT NULL
        GROUP BY 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO job_count_deltas (queue, status, n, local_n, input_tokens, output_tokens, cost)
        SELECT queue, status, -count(*), -count(*) FILTER (WHERE batch_id IS NULL),
               -coalesce(sum(input_tokens), 0), -coalesce(sum(output_tokens), 0),
               -coalesce(sum(cost), 0)
        FROM old_rows GROUP BY queue, status;
        INSERT INTO local_finish_deltas (second, n)
        SELECT floor(finished_at)::bigint, -count(*) FROM old_rows
        WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL AND finished_at IS NOT NULL
        GROUP BY 1;
    ELSE
        INSERT INTO job_count_deltas (queue, status, n, local_n, input_tokens, output_tokens, cost)
        SELECT queue, status, sum(n), sum(local_n), sum(input_tokens), sum(output_tokens),
               sum(cost)
        FROM (
            SELECT queue, status, 1 AS n, (batch_id IS NULL)::int AS local_n,
                   coalesce(input_tokens, 0) AS input_tokens,
                   coalesce(output_tokens, 0) AS output_tokens, coalesce(cost, 0) AS cost
            FROM new_rows
            UNION ALL
            SELECT queue, status, -1, -(batch_id IS NULL)::int, -coalesce(input_tokens, 0),
                   -coalesce(output_tokens, 0), -coalesce(cost, 0)
            FROM old_rows
        ) delta
        GROUP BY queue, status
        -- An update that moves no count (a lease extension) writes nothing here.
        HAVING sum(n) <> 0 OR sum(local_n) <> 0 OR sum(input_tokens) <> 0
            OR sum(output_tokens) <> 0 OR sum(cost) <> 0;
        INSERT INTO local_finish_deltas (second, n)
        SELECT second, sum(n) FROM (
            SELECT floor(finished_at)::bigint AS second, 1 AS n FROM new_rows
            WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL
              AND finished_at IS NOT NULL
            UNION ALL
            SELECT floor(finished_at)::bigint, -1 FROM old_rows
            WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL
              AND finished_at IS NOT NULL
        ) delta
        GROUP BY second HAVING sum(n) <> 0;  -- claims and lease extensions: nothing
    END IF;
    -- One folder at a time, and only one transaction in 16 tries: the others skip, their
    -- deltas wait for the next fold (readers add them up, so every count stays exact; a
    -- fold after every claim and finish was ~4 µs of a job's server CPU). Writers only
    -- ever append, so no finish waits on the current second's row.
    IF txid_current() % 16 = 0
       AND pg_try_advisory_xact_lock(hashtext('batchdash.job_counts')) THEN
        WITH folded AS (DELETE FROM job_count_deltas RETURNING *)
        INSERT INTO job_count_totals AS c
            (queue, status, n, local_n, input_tokens, output_tokens, cost)
        SELECT queue, status, sum(n), sum(local_n), sum(input_tokens), sum(output_tokens),
               sum(cost)
        FROM folded GROUP BY queue, status ORDER BY queue, status
        ON CONFLICT (queue, status) DO UPDATE SET
            n = c.n + excluded.n,
            local_n = c.local_n + excluded.local_n,
            input_tokens = c.input_tokens + excluded.input_tokens,
            output_tokens = c.output_tokens + excluded.output_tokens,
            cost = c.cost + excluded.cost;
        WITH folded AS (DELETE FROM local_finish_deltas RETURNING *)
        INSERT INTO local_finish_totals AS c (second, n)
        SELECT second, sum(n) FROM folded GROUP BY second ORDER BY second
        ON CONFLICT (second) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

-- 3. The budget check of 0008 only for deltas that added cost: claims and no-cost finishes
--    append deltas too, and each called budget_check (a query of queues) for no queue.
CREATE OR REPLACE FUNCTION budget_check_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE cost > 0) THEN
        PERFORM budget_check(ARRAY(SELECT DISTINCT queue FROM new_rows WHERE cost > 0));
    END IF;
    RETURN NULL;
END $$;
