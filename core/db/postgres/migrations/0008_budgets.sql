-- Cost budgets per queue (issue 14, part 2), as SQLite's migration 0016: an optional
-- budget in USD and a pause reason ('manual' or 'budget') per queue; a queue's spend is
-- its jobs' cost (the job_counts view) plus what the QA judges spent on its jobs
-- (qa_queue_spend, kept by a statement-level trigger on qa_results like qa_totals); the
-- `queue_spend` view adds the two. When a cost lands (a local finish, a remote batch's
-- ingest, a QA verdict) a trigger pauses a budgeted queue whose spend reached its budget
-- in the same write. The check reads the rows the statement wrote (its transition table),
-- so an unbudgeted queue costs one primary-key lookup on `queues` and no lock.
ALTER TABLE queues ADD COLUMN budget_usd double precision;
ALTER TABLE queues ADD COLUMN pause_reason text;
UPDATE queues SET pause_reason = 'manual' WHERE paused;

CREATE TABLE qa_queue_spend (
    queue text COLLATE "C" PRIMARY KEY,
    cost  double precision NOT NULL DEFAULT 0
);
INSERT INTO qa_queue_spend (queue, cost)
    SELECT jobs.queue, sum(coalesce(qa_results.cost, 0))
    FROM qa_results JOIN jobs ON jobs.id = qa_results.job_id GROUP BY jobs.queue;

CREATE VIEW queue_spend AS
    SELECT queue, sum(cost) AS spend
    FROM (SELECT queue, cost FROM job_counts UNION ALL SELECT queue, cost FROM qa_queue_spend) s
    GROUP BY queue;

-- Pause the budgeted queues among `names` whose spend reached their budget. Writers to one
-- budgeted queue take turns here (a transaction-scoped advisory lock per queue), and the
-- check after the lock reads with a fresh snapshot: two hosts finishing the last jobs at
-- once cannot each see the other's cost missing and both leave the queue running. An
-- unbudgeted queue takes no lock: the loop finds no row for it.
CREATE FUNCTION budget_check(names text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    budgeted text;
BEGIN
    FOR budgeted IN
        SELECT name FROM queues
        WHERE name = ANY (names) AND budget_usd IS NOT NULL AND NOT paused ORDER BY name
    LOOP
        PERFORM pg_advisory_xact_lock(hashtext('batchdash.budget'), hashtext(budgeted));
        UPDATE queues SET paused = true, pause_reason = 'budget'
        WHERE name = budgeted AND budget_usd IS NOT NULL AND NOT paused
          AND budget_usd <= (SELECT spend FROM queue_spend WHERE queue = budgeted);
    END LOOP;
END $$;

-- Add what verdicts moved to their jobs' queues, then check those queues' budgets.
CREATE TYPE spend_move AS (job_id bigint, cost double precision);
CREATE FUNCTION qa_spend_move(moves spend_move[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO qa_queue_spend AS s (queue, cost)
    SELECT jobs.queue, sum(m.cost) FROM unnest(moves) m JOIN jobs ON jobs.id = m.job_id
    GROUP BY jobs.queue HAVING sum(m.cost) <> 0 ORDER BY jobs.queue
    ON CONFLICT (queue) DO UPDATE SET cost = s.cost + excluded.cost;
    SELECT budget_check(ARRAY(
        SELECT jobs.queue FROM unnest(moves) m JOIN jobs ON jobs.id = m.job_id
        GROUP BY jobs.queue HAVING sum(m.cost) > 0));
$$;

-- Only the transition tables the operation has are named (INSERT: new, DELETE: old).
CREATE FUNCTION qa_queue_spend_fold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM qa_spend_move(ARRAY(
            SELECT (job_id, coalesce(cost, 0))::spend_move FROM new_rows WHERE cost <> 0));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM qa_spend_move(ARRAY(
            SELECT (job_id, -cost)::spend_move FROM old_rows WHERE cost <> 0));
    ELSE
        PERFORM qa_spend_move(ARRAY(
            SELECT (job_id, coalesce(cost, 0))::spend_move FROM new_rows WHERE cost <> 0
            UNION ALL
            SELECT (job_id, -cost)::spend_move FROM old_rows WHERE cost <> 0));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER qa_queue_spend_insert AFTER INSERT ON qa_results
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION qa_queue_spend_fold();
CREATE TRIGGER qa_queue_spend_update AFTER UPDATE ON qa_results
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_queue_spend_fold();
CREATE TRIGGER qa_queue_spend_delete AFTER DELETE ON qa_results
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION qa_queue_spend_fold();

-- Jobs' cost reaches job_counts as appended deltas: check the queues whose cost grew.
CREATE FUNCTION budget_check_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM budget_check(ARRAY(SELECT DISTINCT queue FROM new_rows WHERE cost > 0));
    RETURN NULL;
END $$;
CREATE TRIGGER budget_check_deltas AFTER INSERT ON job_count_deltas
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION budget_check_deltas();

-- A budget pause is on the queue's timeline like a manual one.
CREATE FUNCTION budget_pause_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (at, kind, queue, detail)
    SELECT batchdash_now(), 'paused', n.name, 'budget'
    FROM new_rows n JOIN old_rows o ON o.name = n.name
    WHERE n.pause_reason = 'budget' AND o.pause_reason IS DISTINCT FROM 'budget';
    RETURN NULL;
END $$;
CREATE TRIGGER budget_pause_event AFTER UPDATE ON queues
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION budget_pause_event();
