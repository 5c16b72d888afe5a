//! Applies embedded SQL migrations once each, in order, recording them in `schema_migrations`.
//! SQLite and PostgreSQL have their own files with the same numbers.

use sqlx::{Executor, PgPool, SqlitePool};

use crate::StoreError;

/// One numbered migration.
pub(crate) struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(Migration { version: $version, name: $name, sql: include_str!(concat!("../migrations/", $dir, "/", $name)) }),*]
    };
}

const SQLITE: &[Migration] = migrations!("sqlite":
    1 "0001_core.sql", 2 "0002_history.sql", 3 "0003_acks.sql", 4 "0004_inbox.sql", 5 "0005_chat.sql", 6 "0006_control.sql",
    7 "0007_history_log.sql");
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres":
    1 "0001_core.sql", 2 "0002_history.sql", 3 "0003_acks.sql", 4 "0004_inbox.sql", 5 "0005_chat.sql", 6 "0006_control.sql",
    7 "0007_history_log.sql");

const CREATE_LOG: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Applies every SQLite migration newer than the database, each in its own transaction.
/// (One process owns a SQLite file, so there is no race with another migrator.)
pub(crate) async fn sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    pool.execute(CREATE_LOG).await?;
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(pool).await?;
    for m in SQLITE.iter().filter(|m| Some(m.version) > applied) {
        let mut tx = pool.begin().await?;
        tx.execute(m.sql).await.map_err(|e| m.failed(e))?;
        tx.execute(m.record().as_str()).await.map_err(|e| m.failed(e))?;
        tx.commit().await?;
    }
    Ok(())
}

/// Applies every PostgreSQL migration newer than the database, all in one transaction under
/// an advisory lock, so that nodes starting together migrate once.
pub(crate) async fn postgres(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // The number is arbitrary; it only has to be the same for every Switchboard node.
    tx.execute("SELECT pg_advisory_xact_lock(7350001)").await?;
    tx.execute(CREATE_LOG).await?;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(&mut *tx).await?;
    for m in POSTGRES.iter().filter(|m| Some(m.version) > applied) {
        tx.execute(m.sql).await.map_err(|e| m.failed(e))?;
        tx.execute(m.record().as_str()).await.map_err(|e| m.failed(e))?;
    }
    tx.commit().await?;
    Ok(())
}

impl Migration {
    /// The statement that records this migration (its fields are constants of this file).
    fn record(&self) -> String {
        format!(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', {})",
            self.version,
            self.name,
            crate::unix_now()
        )
    }

    fn failed(&self, source: sqlx::Error) -> StoreError {
        StoreError::Migration { version: self.version, name: self.name, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};

    /// A database written before migration 7 (history clustered by channel) keeps every event,
    /// its position and the counters when the history table becomes an append-only log.
    #[tokio::test]
    async fn history_survives_the_move_to_a_log() {
        let dir = std::env::temp_dir().join(format!("sb-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("old.db").display());
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url).unwrap();
        let pool = SqlitePool::connect_with(options.create_if_missing(true)).await.unwrap();
        pool.execute(CREATE_LOG).await.unwrap();
        for m in SQLITE.iter().filter(|m| m.version < 7) {
            pool.execute(m.sql).await.unwrap();
            pool.execute(m.record().as_str()).await.unwrap();
        }
        pool.execute(
            "INSERT INTO history_streams VALUES ('a1', 'user:u1', 'e1', 3);
             INSERT INTO history_events VALUES ('a1', 'user:u1', 2, 'id2', 'k', '{\"n\":2}', 2, 9999999999),
                                               ('a1', 'user:u1', 3, 'id3', 'k', '{\"n\":3}', 3, 9999999999);",
        )
        .await
        .unwrap();
        pool.close().await;

        let store = SqliteStore::open(&url).await.unwrap();
        let page = store.history("a1", "user:u1", 0, 10).await.unwrap();
        assert_eq!((page.epoch.as_str(), page.latest), ("e1", 3));
        assert_eq!(page.events.iter().map(|e| (e.seq, e.id.as_str())).collect::<Vec<_>>(), [(2, "id2"), (3, "id3")]);
        let next = crate::testing::history_event("a1", "user:u1", 4, 3, std::time::Duration::from_secs(60));
        assert_eq!(store.append_history(&[next]).await.unwrap(), [("e1".to_owned(), 4)]);
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
