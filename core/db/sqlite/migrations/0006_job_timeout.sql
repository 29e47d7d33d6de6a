-- v6: a per-job attempt timeout in seconds (NULL: the worker's --job-timeout, if any).
ALTER TABLE jobs ADD COLUMN timeout REAL;
