-- SQLite's migration 7 turns its history table into an append-only log; a PostgreSQL table
-- is one already (a heap, with the primary key as its index), so nothing changes here. The
-- file keeps both databases' migration numbers the same.
SELECT 1;
