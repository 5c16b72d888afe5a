-- History as an append-only log: rows in insertion order (rowid), found by channel through a
-- unique index. Clustered by channel (WITHOUT ROWID), each event of a round to a thousand
-- users dirtied a different 4 KiB page, and every commit wrote each such page to the WAL;
-- appended in order, a page holds ~20 events and the index entries are small
-- (docs/BENCHMARKS.md, change 12: 51k to 125k plain inserts/s on this machine).
CREATE TABLE history_log (
    app TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    ts INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO history_log (app, channel, seq, id, kind, data, ts, expires_at)
    SELECT app, channel, seq, id, kind, data, ts, expires_at FROM history_events ORDER BY ts, app, channel, seq;
DROP TABLE history_events;
ALTER TABLE history_log RENAME TO history_events;
CREATE UNIQUE INDEX history_by_channel ON history_events (app, channel, seq);
CREATE INDEX history_by_expiry ON history_events (expires_at);
