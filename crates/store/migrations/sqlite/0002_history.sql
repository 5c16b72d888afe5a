-- One row per channel with history: its epoch and the seq of its newest event. The epoch is
-- made once, when the channel is first used, and changes only if this row is lost.
CREATE TABLE history_streams (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (app, channel)
);

-- The events, as published: the hub encodes them again, with their position, on replay.
CREATE TABLE history_events (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    ts INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (app, channel, seq)
) WITHOUT ROWID;
CREATE INDEX history_by_expiry ON history_events (expires_at);
