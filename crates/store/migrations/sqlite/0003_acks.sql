-- The newest position each device of a user acknowledged, per channel with history. A device
-- that reconnects without positions resumes from here.
CREATE TABLE device_acks (
    app TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    channel TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    acked_at INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (app, user_id, device, channel)
) WITHOUT ROWID;
