-- The newest position each device of a user acknowledged, per channel with history.
CREATE TABLE device_acks (
    app TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    channel TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq BIGINT NOT NULL,
    acked_at BIGINT NOT NULL, -- Unix milliseconds
    PRIMARY KEY (app, user_id, device, channel)
);
