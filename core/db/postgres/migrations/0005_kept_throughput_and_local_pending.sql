-- The dashboard's header at 10M jobs without work that grows with the store or with recent
-- throughput (issue 12: the sparkline counted every finish of the last 15 minutes on the
-- jobs_local_done index, 112 ms for 1.25M finishes; pending per queue counted 50k index
-- entries, 19 ms).
--
-- 1. Local finishes per epoch second (succeeded or failed, outside remote batches, with a
--    finished_at: the jobs_local_done predicate), kept by the same statement-level trigger
--    and append-only deltas as job_counts. A bucket's count is then its whole seconds from
--    the kept table plus, at each edge, the part of one second on the index (PgStats).
-- 2. `local_n` on job_counts: the jobs of each (queue, status) outside remote batches, as
--    SQLite's migration 0014 did, so pending-per-queue needs no pass over pending jobs.
--    jobs_local_pending stays: it answers "how many wait out a retry delay" by a range.

CREATE TABLE local_finish_totals (
    second bigint PRIMARY KEY,
    n      bigint NOT NULL
);

CREATE TABLE local_finish_deltas (
    second bigint NOT NULL,
    n      bigint NOT NULL
);

CREATE VIEW local_finishes AS
    SELECT second, sum(n)::bigint AS n
    FROM (SELECT second, n FROM local_finish_totals
          UNION ALL
          SELECT second, n FROM local_finish_deltas) d
    GROUP BY second;

ALTER TABLE job_count_totals ADD COLUMN local_n bigint NOT NULL DEFAULT 0;
ALTER TABLE job_count_deltas ADD COLUMN local_n bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW job_counts AS
    SELECT queue, status, sum(n)::bigint AS n, sum(input_tokens)::bigint AS input_tokens,
           sum(output_tokens)::bigint AS output_tokens, sum(cost) AS cost,
           sum(local_n)::bigint AS local_n
    FROM (SELECT queue, status, n, input_tokens, output_tokens, cost, local_n
          FROM job_count_totals
          UNION ALL
          SELECT queue, status, n, input_tokens, output_tokens, cost, local_n
          FROM job_count_deltas) d
    GROUP BY queue, status;

-- The fold of 0001 with `local_n` and the finishes per second. Only the transition tables
-- the operation has are named (INSERT: new, DELETE: old, UPDATE: both, as signed rows).
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
    -- One folder at a time; the others skip, their deltas wait for the next fold. Writers
    -- only ever append, so no finish waits on the current second's row.
    IF pg_try_advisory_xact_lock(hashtext('batchdash.job_counts')) THEN
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

-- Rebuild both kept tables from the rows, with no job written meanwhile (SHARE mode waits
-- for the writers in flight and holds off new ones until this step commits).
LOCK TABLE jobs IN SHARE MODE;
DELETE FROM job_count_deltas;
DELETE FROM job_count_totals;
INSERT INTO job_count_totals (queue, status, n, local_n, input_tokens, output_tokens, cost)
SELECT queue, status, count(*), count(*) FILTER (WHERE batch_id IS NULL),
       coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(cost), 0)
FROM jobs GROUP BY queue, status;
INSERT INTO local_finish_totals (second, n)
SELECT floor(finished_at)::bigint, count(*) FROM jobs
WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL AND finished_at IS NOT NULL
GROUP BY 1;
