-- v14: local pending jobs per queue come from the trigger-kept `job_counts` (a `local_n`
-- column: jobs outside remote batches) instead of v11's `jobs_local_pending` index, which
-- cost every enqueue and every claim a second index write. Jobs waiting out a retry delay
-- are counted on the claim index, which holds exactly the local pending jobs.
DROP INDEX jobs_local_pending;
ALTER TABLE job_counts ADD COLUMN local_n INTEGER NOT NULL DEFAULT 0;
UPDATE job_counts SET local_n = (
    SELECT count(*) FROM jobs
    WHERE jobs.queue = job_counts.queue AND jobs.status = job_counts.status
      AND jobs.batch_id IS NULL);

DROP TRIGGER jobs_count_insert;
DROP TRIGGER jobs_count_update;
DROP TRIGGER jobs_count_delete;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (queue, status, n, local_n, input_tokens, output_tokens, cost)
    VALUES (new.queue, new.status, 1, new.batch_id IS NULL, coalesce(new.input_tokens, 0),
            coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
    ON CONFLICT (queue, status) DO UPDATE SET
        n = n + 1,
        local_n = local_n + excluded.local_n,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost = cost + excluded.cost;
END;
CREATE TRIGGER jobs_count_update
AFTER UPDATE OF status, batch_id, input_tokens, output_tokens, cost ON jobs BEGIN
    UPDATE job_counts SET
        n = n - 1,
        local_n = local_n - (old.batch_id IS NULL),
        input_tokens = input_tokens - coalesce(old.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0)
    WHERE queue = old.queue AND status = old.status;
    INSERT INTO job_counts (queue, status, n, local_n, input_tokens, output_tokens, cost)
    VALUES (new.queue, new.status, 1, new.batch_id IS NULL, coalesce(new.input_tokens, 0),
            coalesce(new.output_tokens, 0), coalesce(new.cost, 0))
    ON CONFLICT (queue, status) DO UPDATE SET
        n = n + 1,
        local_n = local_n + excluded.local_n,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost = cost + excluded.cost;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET
        n = n - 1,
        local_n = local_n - (old.batch_id IS NULL),
        input_tokens = input_tokens - coalesce(old.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0)
    WHERE queue = old.queue AND status = old.status;
END;
