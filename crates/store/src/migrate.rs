//! Applies embedded SQL migrations once each, in order, recording them in `schema_migrations`.

use sqlx::{Executor, SqlitePool};

use crate::StoreError;

/// One numbered migration.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// SQLite's migrations, embedded so the binary needs no files next to it.
pub(crate) const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "0001_core.sql", sql: include_str!("../migrations/sqlite/0001_core.sql") },
    Migration { version: 2, name: "0002_history.sql", sql: include_str!("../migrations/sqlite/0002_history.sql") },
    Migration { version: 3, name: "0003_acks.sql", sql: include_str!("../migrations/sqlite/0003_acks.sql") },
];

/// Applies every migration newer than the database, each in its own transaction.
pub(crate) async fn run(pool: &SqlitePool, migrations: &[Migration]) -> Result<(), StoreError> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .await?;
    let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations").fetch_one(pool).await?;
    for m in migrations.iter().filter(|m| Some(m.version) > applied) {
        let fail = |source| StoreError::Migration { version: m.version, name: m.name, source };
        let mut tx = pool.begin().await?;
        tx.execute(m.sql).await.map_err(fail)?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(crate::unix_now())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await?;
    }
    Ok(())
}
