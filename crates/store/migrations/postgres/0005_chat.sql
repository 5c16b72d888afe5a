-- Conversations. `direct_key` (the two users, sorted) makes a direct conversation unique per
-- pair; group conversations have none.
CREATE TABLE conversations (
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,          -- direct | group
    name TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,  -- Unix milliseconds
    direct_key TEXT,
    PRIMARY KEY (app, id)
);
CREATE UNIQUE INDEX conversations_direct ON conversations (app, direct_key) WHERE direct_key IS NOT NULL;

-- Who is in each conversation, and the newest message cursor each has read.
CREATE TABLE participants (
    app TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_read BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app, conversation_id, user_id),
    FOREIGN KEY (app, conversation_id) REFERENCES conversations (app, id) ON DELETE CASCADE
);
CREATE INDEX participants_by_user ON participants (app, user_id);

-- Messages; `seq` orders and pages them (an identity: never reused, so cursors hold).
CREATE TABLE messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    reply_to TEXT,
    media_url TEXT,
    mentions TEXT NOT NULL,      -- JSON array of user ids
    temp_id TEXT,
    created_at BIGINT NOT NULL,  -- Unix milliseconds
    edited_at BIGINT,
    deleted_at BIGINT,           -- deleted for everyone
    UNIQUE (app, id)
);
CREATE INDEX messages_by_conversation ON messages (app, conversation_id, seq);
-- Full-text search: the 'simple' configuration, like SQLite's FTS5 default (no stemming).
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', content));

-- Messages one user deleted for themself only.
CREATE TABLE hidden_messages (
    app TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (app, message_id, user_id)
);

-- When each recipient's device first received a message.
CREATE TABLE deliveries (
    app TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (app, message_id, user_id)
);

-- When each user was last online (set when their last connection leaves).
CREATE TABLE last_seen (
    app TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (app, user_id)
);
