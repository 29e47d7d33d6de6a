-- Delivery memory of notifications (SQLite's migration 0019; see there).
-- A channel is one delivery target (a command or a webhook), named by a hash of it so the
-- database never holds a URL's token; history before `started_at` is recorded as
-- `baseline` (never delivered), so a new channel starts from "now".
CREATE TABLE notice_channels (
    channel    text PRIMARY KEY,
    started_at double precision NOT NULL
);
CREATE TABLE notices_sent (
    channel   text NOT NULL,
    notice_id text NOT NULL,
    sent_at   double precision NOT NULL,
    baseline  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (channel, notice_id)
);
