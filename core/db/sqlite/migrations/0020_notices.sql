-- v19: delivery memory of notifications (`batchdash poll --notify/--webhook`).
-- A channel is one delivery target (a command or a webhook), named by a hash of it so the
-- database never holds a URL's token; `started_at` is when it first ran: history before
-- that is recorded as `baseline` (never delivered), so a new channel starts from "now".
-- `notices_sent` holds each notice id a channel delivered, so a restart never repeats one.
CREATE TABLE notice_channels (
    channel    TEXT PRIMARY KEY,
    started_at REAL NOT NULL
);
CREATE TABLE notices_sent (
    channel   TEXT NOT NULL,
    notice_id TEXT NOT NULL,
    sent_at   REAL NOT NULL,
    baseline  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, notice_id)
);
