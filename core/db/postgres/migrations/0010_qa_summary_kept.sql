-- The QA summary of every queue (the QA pane, `--once`, `qa summary`) in time that does not
-- grow with the verdicts (issue 12: at 10M jobs, 200k verdicts and 1M scores, its GROUP BYs
-- took 263 ms). Statement-level triggers keep what it shows, as qa_totals keeps the spend:
-- verdicts and errors, scored verdicts per rounded overall, per (judge, dimension) the
-- count and sum of the scores and how many of each value, and per job the lowest
-- and highest overall (the disagreements, read through an index on the spread). The
-- triggers first take one advisory lock, held to commit, so each statement in them sees
-- every committed verdict and none changes meanwhile (verdict writes queue, as priced ones
-- already did on qa_totals' row; each waits for a judge's answer anyway). A summary of ONE
-- queue still reads the rows (core/db/qashared.py).

CREATE TABLE qa_verdict_totals (
    id       integer PRIMARY KEY CHECK (id = 1),
    verdicts bigint NOT NULL DEFAULT 0,
    errors   bigint NOT NULL DEFAULT 0
);
INSERT INTO qa_verdict_totals (id) VALUES (1);

-- `bucket` is round(overall) half away from zero, as the summary's distribution rounds.
CREATE TABLE qa_overall_buckets (
    bucket integer PRIMARY KEY,
    n      bigint NOT NULL
);

CREATE TABLE qa_dimension_stats (
    judge     text NOT NULL,
    dimension text NOT NULL,
    n         bigint NOT NULL,
    -- Added as avg() adds the rows (in double precision, in the order written), so the
    -- mean is the same double SQLite and the rows give, down to how it rounds for display.
    total     double precision NOT NULL,
    PRIMARY KEY (judge, dimension)
);

-- How many scores of each value: a pair's lowest and highest score are its first and last
-- entries, whatever a rescore takes out (judges score on a few values, so this stays small).
CREATE TABLE qa_score_values (
    judge     text NOT NULL,
    dimension text NOT NULL,
    score     double precision NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (judge, dimension, score)
);

CREATE TABLE qa_job_spreads (
    job_id bigint PRIMARY KEY,
    lo     double precision NOT NULL,
    hi     double precision NOT NULL
);
CREATE INDEX qa_job_spreads_spread ON qa_job_spreads ((hi - lo) DESC, job_id);

-- The lowest overall scores, ties by job id, read off one index: judges score on a few
-- values, so on (overall) alone every verdict of the lowest value was read and sorted
-- (15 ms at 1M jobs with 11k verdicts). It serves what that index served.
CREATE INDEX qa_results_worst ON qa_results (overall, job_id) WHERE overall IS NOT NULL;
DROP INDEX qa_results_overall;

-- Everything above from the rows (this migration, and a fallback of the triggers).
CREATE FUNCTION qa_summary_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE qa_verdict_totals SET verdicts = t.n, errors = t.e
    FROM (SELECT count(*) AS n, count(error) AS e FROM qa_results) t;
    DELETE FROM qa_overall_buckets;
    INSERT INTO qa_overall_buckets (bucket, n)
    SELECT round(overall::numeric)::integer, count(*) FROM qa_results
    WHERE overall IS NOT NULL GROUP BY 1;
    DELETE FROM qa_score_values;
    INSERT INTO qa_score_values (judge, dimension, score, n)
    SELECT q.judge, s.dimension, s.score, count(*)
    FROM qa_scores s JOIN qa_results q ON q.id = s.result_id GROUP BY 1, 2, 3;
    DELETE FROM qa_dimension_stats;
    INSERT INTO qa_dimension_stats (judge, dimension, n, total)
    SELECT q.judge, s.dimension, count(*), sum(s.score)
    FROM qa_scores s JOIN qa_results q ON q.id = s.result_id GROUP BY 1, 2;
    DELETE FROM qa_job_spreads;
    INSERT INTO qa_job_spreads (job_id, lo, hi)
    SELECT job_id, min(overall), max(overall) FROM qa_results
    WHERE overall IS NOT NULL GROUP BY job_id;
END $$;

-- A verdict as the fold sees it: +1 as it is now, -1 as it was.
CREATE TYPE qa_signed_verdict AS (sign integer, job_id bigint, overall double precision,
                                  failed boolean);

CREATE FUNCTION qa_results_summary_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed qa_signed_verdict[] := '{}';
BEGIN
    -- Only the transition tables the operation has are named (INSERT: new, DELETE: old).
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        changed := changed || ARRAY(SELECT ROW(1, job_id, overall, error IS NOT NULL)
                                           ::qa_signed_verdict FROM new_rows);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        changed := changed || ARRAY(SELECT ROW(-1, job_id, overall, error IS NOT NULL)
                                           ::qa_signed_verdict FROM old_rows);
    END IF;
    IF cardinality(changed) = 0 THEN  -- an upsert that kept the verdict it found
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('batchdash.qa_summary'));
    UPDATE qa_verdict_totals SET verdicts = verdicts + d.n, errors = errors + d.e
    FROM (SELECT coalesce(sum(sign), 0) AS n, coalesce(sum(sign) FILTER (WHERE failed), 0) AS e
          FROM unnest(changed)) d
    WHERE d.n <> 0 OR d.e <> 0;
    INSERT INTO qa_overall_buckets AS b (bucket, n)
    SELECT round(overall::numeric)::integer, sum(sign) FROM unnest(changed)
    WHERE overall IS NOT NULL GROUP BY 1 HAVING sum(sign) <> 0 ORDER BY 1
    ON CONFLICT (bucket) DO UPDATE SET n = b.n + excluded.n;
    DELETE FROM qa_overall_buckets WHERE n = 0;
    -- The spread of each job whose verdicts changed, from its verdicts now.
    DELETE FROM qa_job_spreads WHERE job_id IN (SELECT job_id FROM unnest(changed));
    INSERT INTO qa_job_spreads (job_id, lo, hi)
    SELECT job_id, min(overall), max(overall) FROM qa_results
    WHERE job_id IN (SELECT job_id FROM unnest(changed)) AND overall IS NOT NULL
    GROUP BY job_id;
    RETURN NULL;
END $$;

CREATE TRIGGER qa_results_summary_insert AFTER INSERT ON qa_results
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_results_summary_fold();
CREATE TRIGGER qa_results_summary_update AFTER UPDATE ON qa_results
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_results_summary_fold();
CREATE TRIGGER qa_results_summary_delete AFTER DELETE ON qa_results
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_results_summary_fold();

-- A score as the fold sees it, with its verdict's judge: +1 added, -1 taken out.
CREATE TYPE qa_signed_score AS (sign integer, judge text, dimension text,
                                score double precision);

CREATE FUNCTION qa_scores_summary_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed qa_signed_score[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed := ARRAY(SELECT ROW(1, q.judge, s.dimension, s.score)::qa_signed_score
                         FROM new_rows s JOIN qa_results q ON q.id = s.result_id);
    ELSE
        changed := ARRAY(SELECT ROW(-1, q.judge, s.dimension, s.score)::qa_signed_score
                         FROM old_rows s JOIN qa_results q ON q.id = s.result_id);
        IF cardinality(changed) < (SELECT count(*) FROM old_rows) THEN
            -- Scores whose verdict went first (batchdash never deletes verdicts): their
            -- judge is unknown, so everything is taken again from the rows.
            PERFORM pg_advisory_xact_lock(hashtext('batchdash.qa_summary'));
            PERFORM qa_summary_rebuild();
            RETURN NULL;
        END IF;
    END IF;
    IF cardinality(changed) = 0 THEN  -- a rescore's DELETE of scores not yet written
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('batchdash.qa_summary'));
    INSERT INTO qa_dimension_stats AS c (judge, dimension, n, total)
    SELECT judge, dimension, sum(sign), sum(sign * score) FROM unnest(changed)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (judge, dimension) DO UPDATE SET n = c.n + excluded.n,
        total = c.total + excluded.total;
    INSERT INTO qa_score_values AS c (judge, dimension, score, n)
    SELECT judge, dimension, score, sum(sign) FROM unnest(changed)
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (judge, dimension, score) DO UPDATE SET n = c.n + excluded.n;
    DELETE FROM qa_dimension_stats c USING unnest(changed) x
    WHERE c.judge = x.judge AND c.dimension = x.dimension AND c.n = 0;
    DELETE FROM qa_score_values c USING unnest(changed) x
    WHERE c.judge = x.judge AND c.dimension = x.dimension AND c.score = x.score AND c.n = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER qa_scores_summary_insert AFTER INSERT ON qa_scores
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_scores_summary_fold();
CREATE TRIGGER qa_scores_summary_delete AFTER DELETE ON qa_scores
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION qa_scores_summary_fold();

-- No verdict is written while the kept tables are built from the rows.
LOCK TABLE qa_results, qa_scores IN SHARE MODE;
SELECT qa_summary_rebuild();
