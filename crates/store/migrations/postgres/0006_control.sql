-- What one node asked of every node for a user's connections (disconnect, join, leave), kept
-- for a day: a node that was cut off from the broker when it was asked applies it once back.
CREATE TABLE control_log (
    app TEXT NOT NULL,
    at BIGINT NOT NULL, -- Unix milliseconds
    user_id TEXT NOT NULL,
    act TEXT NOT NULL -- JSON: the act, as nodes send it
);
CREATE INDEX control_log_by_time ON control_log (app, at);
-- Acknowledged positions are purged once a device has not acknowledged anything for a while.
CREATE INDEX device_acks_by_time ON device_acks (acked_at);
