-- v16: cost budgets per queue (issue 14, part 2). A queue has an optional budget in USD
-- and a pause reason ('manual' or 'budget'). Its spend is its jobs' cost (job_counts)
-- plus what the QA judges spent on its jobs (qa_queue_spend, kept by triggers on
-- qa_results); the `queue_spend` view adds the two. When a cost lands (a local finish, a
-- remote batch's ingest, a QA verdict) a trigger pauses a budgeted queue whose spend has
-- reached its budget, inside the same write: workers claim nothing more from it, and an
-- unbudgeted queue costs one primary-key lookup on `queues` per finished job.
ALTER TABLE queues ADD COLUMN budget_usd REAL;
ALTER TABLE queues ADD COLUMN pause_reason TEXT;
UPDATE queues SET pause_reason = 'manual' WHERE paused = 1;

CREATE TABLE qa_queue_spend (
    queue TEXT PRIMARY KEY,
    cost  REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO qa_queue_spend (queue, cost)
    SELECT jobs.queue, sum(coalesce(qa_results.cost, 0))
    FROM qa_results JOIN jobs ON jobs.id = qa_results.job_id GROUP BY jobs.queue;

CREATE VIEW queue_spend AS
    SELECT queue, sum(cost) AS spend
    FROM (SELECT queue, cost FROM job_counts UNION ALL SELECT queue, cost FROM qa_queue_spend)
    GROUP BY queue;

CREATE TRIGGER qa_queue_spend_insert AFTER INSERT ON qa_results
WHEN coalesce(new.cost, 0) <> 0 BEGIN
    INSERT INTO qa_queue_spend (queue, cost)
    SELECT queue, new.cost FROM jobs WHERE id = new.job_id
    ON CONFLICT (queue) DO UPDATE SET cost = cost + excluded.cost;
END;
CREATE TRIGGER qa_queue_spend_update AFTER UPDATE OF cost ON qa_results
WHEN coalesce(new.cost, 0) <> coalesce(old.cost, 0) BEGIN
    INSERT INTO qa_queue_spend (queue, cost)
    SELECT queue, coalesce(new.cost, 0) - coalesce(old.cost, 0) FROM jobs WHERE id = new.job_id
    ON CONFLICT (queue) DO UPDATE SET cost = cost + excluded.cost;
END;
CREATE TRIGGER qa_queue_spend_delete AFTER DELETE ON qa_results
WHEN coalesce(old.cost, 0) <> 0 BEGIN
    UPDATE qa_queue_spend SET cost = cost - old.cost
    WHERE queue = (SELECT queue FROM jobs WHERE id = old.job_id);
END;

-- The budget checks: after the spend of `new.queue` grew, in the statement that grew it.
CREATE TRIGGER budget_check_counts_insert AFTER INSERT ON job_counts
WHEN new.cost > 0 BEGIN
    UPDATE queues SET paused = 1, pause_reason = 'budget'
    WHERE name = new.queue AND budget_usd IS NOT NULL AND paused = 0
      AND budget_usd <= (SELECT spend FROM queue_spend WHERE queue = new.queue);
END;
CREATE TRIGGER budget_check_counts_update AFTER UPDATE OF cost ON job_counts
WHEN new.cost > old.cost BEGIN
    UPDATE queues SET paused = 1, pause_reason = 'budget'
    WHERE name = new.queue AND budget_usd IS NOT NULL AND paused = 0
      AND budget_usd <= (SELECT spend FROM queue_spend WHERE queue = new.queue);
END;
CREATE TRIGGER budget_check_qa_insert AFTER INSERT ON qa_queue_spend
WHEN new.cost > 0 BEGIN
    UPDATE queues SET paused = 1, pause_reason = 'budget'
    WHERE name = new.queue AND budget_usd IS NOT NULL AND paused = 0
      AND budget_usd <= (SELECT spend FROM queue_spend WHERE queue = new.queue);
END;
CREATE TRIGGER budget_check_qa_update AFTER UPDATE OF cost ON qa_queue_spend
WHEN new.cost > old.cost BEGIN
    UPDATE queues SET paused = 1, pause_reason = 'budget'
    WHERE name = new.queue AND budget_usd IS NOT NULL AND paused = 0
      AND budget_usd <= (SELECT spend FROM queue_spend WHERE queue = new.queue);
END;

-- A budget pause is on the queue's timeline like a manual one.
CREATE TRIGGER budget_pause_event AFTER UPDATE OF pause_reason ON queues
WHEN new.pause_reason = 'budget' AND old.pause_reason IS NOT 'budget' BEGIN
    INSERT INTO events (at, kind, queue, detail)
    VALUES ((julianday('now') - 2440587.5) * 86400.0, 'paused', new.name, 'budget');
END;
