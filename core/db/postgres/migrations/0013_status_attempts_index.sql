-- Sorting by attempts within a status (the dashboard's `s` on a status view) had no index:
-- jobs_attempts (attempts DESC, id) orders all jobs, so the first page of "pending by
-- attempts" at 10M jobs walked it past every other status (700 ms). One index per status
-- run replaces it: a status view walks its own run, and the all-jobs order merges the
-- per-status runs (job_pages, as for the update-time orders). Still one index for the
-- claim and finish to maintain.
CREATE INDEX jobs_status_attempts ON jobs (status, attempts DESC, id);
DROP INDEX jobs_attempts;
