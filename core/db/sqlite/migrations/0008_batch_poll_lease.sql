-- v8: a poll cycle claims each batch it works on: owner and expiry of its poll lease,
-- taken and released by compare-and-set UPDATEs, so two pollers never work on one batch.
ALTER TABLE batches ADD COLUMN poll_owner TEXT;
ALTER TABLE batches ADD COLUMN poll_lease_until REAL;
