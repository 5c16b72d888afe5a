-- One row per channel with history: its epoch and the seq of its newest event. Appends lock
-- this row, so nodes sharing the database number a channel's events one after another.
CREATE TABLE history_streams (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (app, channel)
);

-- The events, as published: the hub encodes them again, with their position, on replay.
CREATE TABLE history_events (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    ts BIGINT NOT NULL,         -- Unix milliseconds
    expires_at BIGINT NOT NULL, -- Unix seconds
    PRIMARY KEY (app, channel, seq)
);
CREATE INDEX history_by_expiry ON history_events (expires_at);
