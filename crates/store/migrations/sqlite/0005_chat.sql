-- Conversations. `direct_key` (the two users, sorted) makes a direct conversation unique per
-- pair; group conversations have none.
CREATE TABLE conversations (
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,          -- direct | group
    name TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- Unix milliseconds
    direct_key TEXT,
    PRIMARY KEY (app, id)
);
CREATE UNIQUE INDEX conversations_direct ON conversations (app, direct_key) WHERE direct_key IS NOT NULL;

-- Who is in each conversation, and the newest message cursor each has read.
CREATE TABLE participants (
    app TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app, conversation_id, user_id),
    FOREIGN KEY (app, conversation_id) REFERENCES conversations (app, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX participants_by_user ON participants (app, user_id);

-- Messages; `seq` orders and pages them (AUTOINCREMENT: never reused, so cursors hold).
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
    created_at INTEGER NOT NULL, -- Unix milliseconds
    edited_at INTEGER,
    deleted_at INTEGER,          -- deleted for everyone
    UNIQUE (app, id)
);
CREATE INDEX messages_by_conversation ON messages (app, conversation_id, seq);

-- Messages one user deleted for themself only.
CREATE TABLE hidden_messages (
    app TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (app, message_id, user_id)
) WITHOUT ROWID;

-- When each recipient's device first received a message.
CREATE TABLE deliveries (
    app TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (app, message_id, user_id)
) WITHOUT ROWID;

-- Full-text search over message content, kept in step by triggers.
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content = 'messages', content_rowid = 'seq');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;

-- When each user was last online (set when their last connection leaves).
CREATE TABLE last_seen (
    app TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (app, user_id)
) WITHOUT ROWID;
