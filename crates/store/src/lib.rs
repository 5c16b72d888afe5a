//! The store seam: everything Switchboard keeps on disk.
//!
//! # Layout
//! - [`Store`]: the contract (below), held as `Arc<dyn Store>`.
//! - [`InboxStore`] (in [`inbox`]): notifications and alerts, and [`ChatStore`] (in
//!   [`chat`]): conversations, messages and last-seen times; both supertraits of [`Store`].
//! - [`SqliteStore`]: the embedded default, WAL mode: reads and feature writes through sqlx,
//!   history appends on one writer thread with its own connection (`sqlite/writer.rs`), and
//!   checkpoints on another (`sqlite/checkpoint.rs`).
//! - [`PgStore`]: PostgreSQL, for several nodes sharing one database.
//! - `sql`: the SQL both run, written once and instantiated per driver.
//! - `migrate`: applies numbered SQL files (embedded in the binary) once, in order.
//! - [`testing`]: the conformance suite every implementation must pass.
//!
//! # The contract
//! - **Durability**: when a write method returns `Ok`, the row survives a `kill -9` of the
//!   process.
//! - **Isolation**: every row belongs to one app; no method returns another app's rows.
//! - **Atomic claims**: [`Store::claim_idempotency`] and [`Store::setting_or_insert`] are
//!   atomic: of two concurrent callers exactly one wins and both see the winner's value.
//! - **History**: [`Store::append_history`] numbers each channel's events 1, 2, 3, ... under
//!   one epoch, in call order, in one transaction (the hub's group commit); a channel's epoch
//!   never changes while its row exists. [`Store::history`] reads one consistent snapshot.

pub mod chat;
pub mod inbox;
mod migrate;
mod postgres;
mod sql;
mod sqlite;
pub mod testing;

use std::time::Duration;

use async_trait::async_trait;

pub use chat::{ChatStore, Conversation, ConversationSummary, Message, NewConversation, NewMessage};
pub use inbox::{Alert, InboxStore, NewAlert, NewNotification, Notification, Page, ReadMark, Retention};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the operation. (Not a `source`: the message already
    /// says everything sqlx's error does, and error chains would print it twice.)
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The input holds text the database cannot keep: PostgreSQL refuses the NUL character
    /// (U+0000) in text. The caller's input is at fault, not the store.
    #[error("text may not contain the NUL character (U+0000)")]
    Unstorable,
    /// TLS to the database could not be set up: a CA file that cannot be read, or a server
    /// certificate this node does not trust. The message says what to do.
    #[error("TLS to the database: {0}")]
    Tls(String),
    /// The SQLite history writer failed or is closed.
    #[error("database error: {0}")]
    Writer(String),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // 22021 character_not_in_repertoire and 22P05 untranslatable_character: how
        // PostgreSQL refuses a NUL in text and in JSON text.
        match &e {
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => Self::Unstorable,
            _ => Self::Database(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Writer(e.to_string())
    }
}

/// One event to append to a channel's durable history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryAppend {
    /// The app.
    pub app: String,
    /// The channel.
    pub channel: String,
    /// The event's id.
    pub id: String,
    /// The event's `type`.
    pub kind: String,
    /// The event's `data`, as JSON text.
    pub data: String,
    /// Publish time, Unix milliseconds.
    pub ts: u64,
    /// Events the channel keeps; older ones are dropped.
    pub size: u32,
    /// How long the event is kept.
    pub ttl: Duration,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its place in the channel.
    pub seq: u64,
    /// The event's id.
    pub id: String,
    /// The event's `type`.
    pub kind: String,
    /// The event's `data`, as JSON text.
    pub data: String,
    /// Publish time, Unix milliseconds.
    pub ts: u64,
}

/// Part of one channel's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The channel's epoch.
    pub epoch: String,
    /// The seq of the newest event; 0 before the first.
    pub latest: u64,
    /// The seq of the oldest event still kept; `latest + 1` when none is.
    pub oldest: u64,
    /// Events after the requested seq, oldest first.
    pub events: Vec<StoredEvent>,
}

/// How long the control log keeps an entry: longer than any outage a node is expected to
/// come back from with its connections.
pub const CONTROL_LOG_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How long a device's acknowledged positions outlive its last `ack`.
pub const ACKS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// One entry of the control log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlEntry {
    /// The app.
    pub app: String,
    /// When it was asked, Unix milliseconds.
    pub at_ms: u64,
    /// The user whose connections it is about.
    pub user: String,
    /// What to do, as JSON (the hub's own encoding).
    pub act: String,
}

/// The newest position one device of a user acknowledged on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAck {
    /// The device, as the client named it.
    pub device: String,
    /// The channel.
    pub channel: String,
    /// The epoch of the acknowledged position.
    pub epoch: String,
    /// The acknowledged seq.
    pub seq: u64,
    /// When it was acknowledged, Unix milliseconds.
    pub acked_at_ms: u64,
}

/// Durable state. See the crate docs for the contract.
#[async_trait]
pub trait Store: InboxStore + ChatStore + Send + Sync {
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
    /// Replaces the result recorded under a claimed key (once the publish knows more).
    async fn update_idempotency(&self, app: &str, key: &str, result: &str) -> Result<(), StoreError>;
    /// Forgets a claim whose publish failed, so a retry can publish.
    async fn release_idempotency(&self, app: &str, key: &str) -> Result<(), StoreError>;
    /// Deletes expired idempotency records and history events, control log entries older than
    /// [`CONTROL_LOG_KEPT`] and acknowledged positions untouched for [`ACKS_KEPT`]; returns
    /// how many rows went.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
    /// Records what a node asked of every node for a user's connections.
    async fn log_control(&self, entry: &ControlEntry) -> Result<(), StoreError>;
    /// The control log of `app` from `since_ms` on, oldest first.
    async fn control_since(&self, app: &str, since_ms: u64) -> Result<Vec<ControlEntry>, StoreError>;
    /// Starts a new epoch for every channel with history (of `app`, or of every app): after a
    /// backup is restored, seqs are handed out again, and clients' positions must not match
    /// them. Returns the epoch and how many channels got it.
    async fn new_epoch(&self, app: Option<&str>) -> Result<(String, u64), StoreError>;
    /// Whether the store answers: one trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Appends `events` in order, in one transaction; returns each one's epoch and seq.
    async fn append_history(&self, events: &[HistoryAppend]) -> Result<Vec<(String, u64)>, StoreError>;
    /// Up to `limit` unexpired events of `channel` with seq above `after`. A channel never
    /// used before gets its epoch here, so that positions taken now stay valid.
    async fn history(&self, app: &str, channel: &str, after: u64, limit: u32) -> Result<HistoryPage, StoreError>;
    /// The seq of the newest event `channel` has committed; 0 before the first. One point
    /// read: a node asks it when a channel gets its first subscriber there.
    async fn history_head(&self, app: &str, channel: &str) -> Result<u64, StoreError>;
    /// Records what a user's device acknowledged. Within an epoch a position only moves
    /// forward: an older ack (one that arrived late) changes nothing.
    async fn save_acks(&self, app: &str, user: &str, acks: &[DeviceAck]) -> Result<(), StoreError>;
    /// A user's acknowledged positions, of one device or of all, sorted by device and channel.
    async fn acks(&self, app: &str, user: &str, device: Option<&str>) -> Result<Vec<DeviceAck>, StoreError>;
    /// The setting under `key`, storing `value` first if there is none.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
    /// The setting under `key`, if there is one.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Flushes and closes connections.
    async fn close(&self) {}
}

impl HistoryPage {
    /// A page from the rows both databases return.
    pub(crate) fn from_rows(
        epoch: String,
        latest: i64,
        oldest: Option<i64>,
        rows: Vec<(i64, String, String, String, i64)>,
    ) -> Self {
        let events = rows
            .into_iter()
            .map(|(seq, id, kind, data, ts)| StoredEvent { seq: seq as u64, id, kind, data, ts: ts as u64 })
            .collect();
        let latest = latest as u64;
        Self { epoch, latest, oldest: oldest.map_or(latest + 1, |o| o as u64), events }
    }
}

impl DeviceAck {
    /// An ack from the row both databases return: device, channel, epoch, seq, time.
    pub(crate) fn from_row((device, channel, epoch, seq, acked_at): (String, String, String, i64, i64)) -> Self {
        Self { device, channel, epoch, seq: seq as u64, acked_at_ms: acked_at as u64 }
    }
}

/// A new random epoch: 16 hex digits.
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
