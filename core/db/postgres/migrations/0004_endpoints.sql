-- Named endpoints and Anthropic's request counts (SQLite's migration 0015).
-- `endpoint_name` is the config file's `[endpoints.NAME]` a batch or a local job was sent
-- through (NULL: the SDK's unnamed default); the key itself is never stored.
-- `request_counts` is the provider's own per-outcome counts as JSON text (Anthropic's
-- processing/succeeded/errored/canceled/expired), shown verbatim in batch detail.
ALTER TABLE batches ADD COLUMN endpoint_name text;
ALTER TABLE batches ADD COLUMN request_counts text;
ALTER TABLE jobs ADD COLUMN endpoint_name text;
