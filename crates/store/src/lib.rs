//! The store seam: everything Switchboard keeps on disk.
//!
//! # Layout
//! - [`Store`]: the contract (below), held as `Arc<dyn Store>`.
//! - [`sqlite`]: the embedded default, through sqlx, WAL mode, migrations embedded in the
//!   binary. PostgreSQL comes later as a second implementation of the same trait.
//! - [`migrate`]: a small runner that applies numbered SQL files once, in order.
//! - [`testing`]: the conformance suite every implementation must pass.
//!
//! # The contract
//! - **Durability**: when a write method returns `Ok`, the row survives a `kill -9` of the
//!   process.
//! - **Isolation**: every row belongs to one app; no method returns another app's rows.
//! - **Atomic claims**: [`Store::claim_idempotency`] and [`Store::setting_or_insert`] are
//!   atomic: of two concurrent callers exactly one wins and both see the winner's value.

mod migrate;
pub mod sqlite;
pub mod testing;

use std::time::Duration;

use async_trait::async_trait;

pub use sqlite::SqliteStore;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's number.
        version: i64,
        /// The migration's file name.
        name: &'static str,
        /// What the database said.
        source: sqlx::Error,
    },
}

/// Durable state. See the crate docs for the contract.
#[async_trait]
pub trait Store: Send + Sync {
    /// Adds `user` to `channel`; `true` when the membership is new.
    async fn add_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, StoreError>;
    /// Removes `user` from `channel`; `true` when a membership was removed.
    async fn remove_member(&self, app: &str, channel: &str, user: &str) -> Result<bool, StoreError>;
    /// The users of `channel`, sorted.
    async fn members(&self, app: &str, channel: &str) -> Result<Vec<String>, StoreError>;
    /// The channels `user` was added to, sorted.
    async fn memberships(&self, app: &str, user: &str) -> Result<Vec<String>, StoreError>;
    /// Records `result` under `key` unless a live record exists; returns the existing record.
    async fn claim_idempotency(
        &self,
        app: &str,
        key: &str,
        result: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError>;
    /// Forgets a claim whose publish failed, so a retry can publish.
    async fn release_idempotency(&self, app: &str, key: &str) -> Result<(), StoreError>;
    /// Deletes expired idempotency records; returns how many.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
    /// The setting under `key`, storing `value` first if there is none.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
    /// Flushes and closes connections.
    async fn close(&self) {}
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
