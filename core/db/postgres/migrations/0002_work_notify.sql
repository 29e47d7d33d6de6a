-- Wake idle workers on every host the moment claimable work appears, instead of after their
-- poll interval: a statement trigger (one notification per statement, and PostgreSQL folds
-- duplicates within a transaction) fires when a write leaves a local job pending.
CREATE FUNCTION jobs_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE status = 'pending' AND batch_id IS NULL) THEN
        PERFORM pg_notify('batchdash_work', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify_work_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_work();
CREATE TRIGGER jobs_notify_work_update AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_work();

-- Resuming a paused queue makes its pending jobs claimable too.
CREATE FUNCTION queues_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE NOT paused) THEN
        PERFORM pg_notify('batchdash_work', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER queues_notify_work AFTER UPDATE ON queues
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION queues_notify_work();
