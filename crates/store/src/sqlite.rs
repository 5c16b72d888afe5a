//! The embedded default store: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

use crate::{migrate, HistoryAppend, StoreError};

mod checkpoint;
mod features;
mod reader;
mod writer;

/// How long a connection waits for another's write lock.
const BUSY: Duration = Duration::from_secs(5);

/// A [`Store`](crate::Store) on SQLite.
pub struct SqliteStore {
    pool: SqlitePool,
    /// History appends, on a file database; an in-memory one has a single connection, the
    /// pool's, and appends through it.
    writer: Option<writer::Writer>,
    /// Quick reads on the caller's thread, on a file database (reader.rs).
    reader: Option<reader::Reader>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses nothing on a process crash (kill -9); only power loss
            // can drop the last commits. FULL would fsync every commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY)
            .foreign_keys(true);
        // An in-memory database lives per connection, so it must be a single one.
        // sqlx takes both spellings of an in-memory database.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let max = if in_memory { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(options.clone()).await?;
        migrate::sqlite(&pool).await?;
        let (writer, reader) = match in_memory {
            true => (None, None),
            false => {
                let path = options.get_filename();
                (Some(writer::Writer::open(path, BUSY)?), Some(reader::Reader::new(path)))
            }
        };
        Ok(Self { pool, writer, reader })
    }

    async fn append(&self, events: &[HistoryAppend]) -> Result<Vec<(String, u64)>, StoreError> {
        match &self.writer {
            Some(writer) => writer.append(events).await,
            None => history_append(&self.pool, events).await,
        }
    }

    /// The writer answers in its turn: a writer stuck behind a lock makes the store unhealthy.
    async fn ping_writes(&self) -> Result<(), StoreError> {
        match &self.writer {
            Some(writer) => writer.ping().await,
            None => Ok(()),
        }
    }

    /// A small read on this thread when it can be done at once; `None` sends it to the pool.
    fn quick_strings(&self, sql: &str, params: &[&str]) -> Option<Vec<String>> {
        self.reader.as_ref()?.strings(sql, params)
    }

    async fn finish_writes(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
    }
}

crate::sql::core::core_store!(SqliteStore, Sqlite);
// A SQLite read transaction is one snapshot from its first read on.
crate::sql::history::history_fns!(Sqlite, None::<&str>);
crate::sql::inbox::inbox_store!(SqliteStore, Sqlite);
crate::sql::chat::chat_store!(SqliteStore, Sqlite, crate::sql::chat::sqlite_search(), crate::chat::fts5_query);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn in_memory_sqlite_passes_conformance() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        crate::testing::conformance(&store).await;
    }

    #[tokio::test]
    async fn file_sqlite_passes_conformance_and_reopens() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        crate::testing::conformance(&store).await;
        store.close().await;
        let store = SqliteStore::open(&url).await.unwrap();
        crate::testing::survives_reopen(&store).await;
        store.close().await;
        // The checkpoint thread's last checkpoint leaves an empty WAL behind.
        let wal = std::fs::metadata(dir.join("t.db-wal")).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the WAL is checkpointed and truncated on close");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
