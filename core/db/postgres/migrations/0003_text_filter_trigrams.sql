-- The dashboard's free-text filter (`/` text: key or error ILIKE '%…%') at millions of jobs:
-- without an index each refresh scanned the table until COUNT_CAP matches (180 ms at 1M
-- jobs for a 1.7% match, the whole table for a rare one). Trigram GIN indexes on both
-- columns let the planner OR two bitmap scans instead. pg_trgm ships with PostgreSQL and is
-- a trusted extension (a database owner may create it); where it cannot be created the
-- filter keeps working as before, only slower, so that is a notice, not a failure.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'batchdash: pg_trgm unavailable (%); text filters scan the jobs table', SQLERRM;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX jobs_key_trgm ON jobs USING gin (key gin_trgm_ops)';
        EXECUTE 'CREATE INDEX jobs_error_trgm ON jobs USING gin (error gin_trgm_ops) '
                'WHERE error IS NOT NULL';
    END IF;
END $$;
