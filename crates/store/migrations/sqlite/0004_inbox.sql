-- Notifications: one user's inbox. `seq` orders a list and pages it; AUTOINCREMENT so that a
-- deleted row's number is never given out again and a cursor keeps its meaning.
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- Unix milliseconds
    read_at INTEGER,             -- Unix milliseconds; NULL while unread
    UNIQUE (app, id)
);
CREATE INDEX notifications_by_user ON notifications (app, user_id, seq);
CREATE INDEX notifications_unread ON notifications (app, user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_by_age ON notifications (app, created_at);

-- Alerts: one group's, acknowledged per user in alert_acks.
CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- Unix milliseconds
    UNIQUE (app, id)
);
CREATE INDEX alerts_by_group ON alerts (app, group_id, seq);
CREATE INDEX alerts_by_age ON alerts (app, created_at);

CREATE TABLE alert_acks (
    app TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    acked_at INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (app, alert_id, user_id),
    FOREIGN KEY (app, alert_id) REFERENCES alerts (app, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX alert_acks_by_user ON alert_acks (app, user_id);
