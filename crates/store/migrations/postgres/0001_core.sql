-- Server-managed channel memberships (PUT /channels/{channel}/members/{user}).
CREATE TABLE members (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    added_at BIGINT NOT NULL, -- Unix seconds
    PRIMARY KEY (app, channel, user_id)
);
CREATE INDEX members_by_user ON members (app, user_id);

-- Publish results by idempotency key, kept 24 h.
CREATE TABLE idempotency (
    app TEXT NOT NULL,
    key TEXT NOT NULL,
    result TEXT NOT NULL,
    expires_at BIGINT NOT NULL, -- Unix seconds
    PRIMARY KEY (app, key)
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);

-- Shared settings, e.g. the demo app's generated credentials.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
