//! The store for several nodes: one PostgreSQL database shared by all of them.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::{migrate, StoreError};

/// A [`Store`](crate::Store) on PostgreSQL.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        // One plain connection first: a pool reports only "timed out", this says why
        // (refused, unknown database, bad password).
        PgConnection::connect_with(&options).await?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrate::postgres(&pool).await?;
        Ok(Self { pool })
    }
}

crate::sql::core::core_store!(PgStore, Postgres);
// Read committed would let an append land between a read's statements.
crate::sql::history::history_fns!(Postgres, Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
crate::sql::inbox::inbox_store!(PgStore, Postgres);
crate::sql::chat::chat_store!(PgStore, Postgres, crate::sql::chat::postgres_search(), str::to_owned);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn postgres_passes_conformance_and_reopens() {
        let Some(url) = crate::testing::postgres_database().await else { return };
        let store = PgStore::open(&url).await.unwrap();
        crate::testing::conformance(&store).await;
        store.close().await;
        let store = PgStore::open(&url).await.unwrap();
        crate::testing::survives_reopen(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn concurrent_opens_migrate_once() {
        let Some(url) = crate::testing::postgres_database().await else { return };
        let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let versions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations").fetch_one(&a.pool).await.unwrap();
        assert_eq!(versions as usize, migrate::POSTGRES.len());
        a.close().await;
        b.close().await;
    }
}
