//! The embedded default store: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::{migrate, unix_now, DeviceAck, HistoryAppend, HistoryPage, Store, StoreError};

mod acks;
mod append;
mod history;

/// A [`Store`] on SQLite.
pub struct SqliteStore {
    pool: SqlitePool,
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
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // An in-memory database lives per connection, so it must be a single one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(options).await?;
        migrate::run(&pool, migrate::SQLITE).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn add_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO members (app, channel, user_id, added_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(app)
        .bind(channel)
        .bind(user)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM members WHERE app = ? AND channel = ? AND user_id = ?")
            .bind(app)
            .bind(channel)
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn members(&self, app: &str, channel: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT user_id FROM members WHERE app = ? AND channel = ? ORDER BY user_id")
            .bind(app)
            .bind(channel)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn memberships(&self, app: &str, user: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT channel FROM members WHERE app = ? AND user_id = ? ORDER BY channel")
            .bind(app)
            .bind(user)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn claim_idempotency(
        &self,
        app: &str,
        key: &str,
        result: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM idempotency WHERE app = ? AND key = ? AND expires_at <= ?")
            .bind(app)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency (app, key, result, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(app)
        .bind(key)
        .bind(result)
        .bind(now + ttl.as_secs() as i64)
        .execute(&mut *tx)
        .await?;
        let existing = if inserted.rows_affected() == 1 {
            None
        } else {
            sqlx::query_scalar("SELECT result FROM idempotency WHERE app = ? AND key = ?")
                .bind(app)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
        };
        tx.commit().await?;
        Ok(existing)
    }

    async fn update_idempotency(&self, app: &str, key: &str, result: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE idempotency SET result = ? WHERE app = ? AND key = ?")
            .bind(result)
            .bind(app)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_idempotency(&self, app: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency WHERE app = ? AND key = ?")
            .bind(app)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = unix_now();
        let keys = sqlx::query("DELETE FROM idempotency WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        let events =
            sqlx::query("DELETE FROM history_events WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        Ok(keys.rows_affected() + events.rows_affected())
    }

    async fn append_history(&self, events: &[HistoryAppend]) -> Result<Vec<(String, u64)>, StoreError> {
        append::append(&self.pool, events).await
    }

    async fn history(&self, app: &str, channel: &str, after: u64, limit: u32) -> Result<HistoryPage, StoreError> {
        history::read(&self.pool, app, channel, after, limit).await
    }

    async fn save_acks(&self, app: &str, user: &str, acks: &[DeviceAck]) -> Result<(), StoreError> {
        acks::save(&self.pool, app, user, acks).await
    }

    async fn acks(&self, app: &str, user: &str, device: Option<&str>) -> Result<Vec<DeviceAck>, StoreError> {
        acks::read(&self.pool, app, user, device).await
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = ?").bind(key).fetch_one(&self.pool).await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Migrations are not applied twice, and rows survive a reopen.
        let store = SqliteStore::open(&url).await.unwrap();
        assert_eq!(store.members("a1", "room:1").await.unwrap(), vec!["u2"]);
        // History keeps its epoch and numbering across a restart.
        let before = store.history("a1", "user:u1", 0, 10).await.unwrap();
        let day = Duration::from_secs(86_400);
        let next = store.append_history(&[crate::testing::history_event("a1", "user:u1", 6, 3, day)]).await.unwrap();
        assert_eq!(next, vec![(before.epoch, before.latest + 1)]);
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
