-- v11: throughput counts only what local workers finished (not cancels, not remote-batch
-- ingests), read from an index of just those jobs; it replaces `jobs_finished`, so a
-- finish still updates one index. The ETA needs local pending jobs per queue (paused or
-- unserved queues have none claimable): a small index answers that without lookups.
-- QA spend is kept in a one-row total by triggers, so the header never sums verdicts.
DROP INDEX jobs_finished;
CREATE INDEX jobs_local_done ON jobs (finished_at)
    WHERE status IN ('succeeded', 'failed') AND batch_id IS NULL;
CREATE INDEX jobs_local_pending ON jobs (queue, run_after)
    WHERE status = 'pending' AND batch_id IS NULL;

CREATE TABLE qa_totals (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost          REAL NOT NULL DEFAULT 0
);
INSERT INTO qa_totals (id, input_tokens, output_tokens, cost)
    SELECT 1, coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
           coalesce(sum(cost), 0) FROM qa_results;
CREATE TRIGGER qa_totals_insert AFTER INSERT ON qa_results BEGIN
    UPDATE qa_totals SET
        input_tokens = input_tokens + coalesce(new.input_tokens, 0),
        output_tokens = output_tokens + coalesce(new.output_tokens, 0),
        cost = cost + coalesce(new.cost, 0);
END;
CREATE TRIGGER qa_totals_update
AFTER UPDATE OF input_tokens, output_tokens, cost ON qa_results BEGIN
    UPDATE qa_totals SET
        input_tokens = input_tokens - coalesce(old.input_tokens, 0)
            + coalesce(new.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0)
            + coalesce(new.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0) + coalesce(new.cost, 0);
END;
CREATE TRIGGER qa_totals_delete AFTER DELETE ON qa_results BEGIN
    UPDATE qa_totals SET
        input_tokens = input_tokens - coalesce(old.input_tokens, 0),
        output_tokens = output_tokens - coalesce(old.output_tokens, 0),
        cost = cost - coalesce(old.cost, 0);
END;
