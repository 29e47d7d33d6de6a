-- v9: a batch remembers the endpoint it was submitted to (the base URL, never the key),
-- and since when it cannot be reached there (a refused call, or failures in a row).
ALTER TABLE batches ADD COLUMN base_url TEXT;
ALTER TABLE batches ADD COLUMN unreachable_since REAL;
