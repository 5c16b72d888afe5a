//! The built-in inbox of seed 003: notifications for one user, alerts for one group.
//!
//! Every change is stored first and pushed second, so what a client was told about is on
//! disk. Pushes go through the hub like any publish: notification events to `user:{user}`,
//! alert events to `group:{group}` (and a user's own acknowledgements to `user:{user}`), so
//! they reach every device, enter durable history and can be resumed.
//!
//! # Layout
//! - [`Inbox`]: the operations, shared by the HTTP API and the socket.
//! - `notifications.rs`, `alerts.rs`: each kind's operations and events; `view.rs` their JSON.
//! - [`InboxService`]: the socket side (`notification:read`, `alert:acknowledge`, ...).
//! - [`retention`]: the background sweep of each app's TTL and maximum count.
//!
//! # Ordering
//! A user's (or group's) changes take turns on one of 64 locks, from the store write to the
//! push, so that the `notification:count` a device sees last is the newest count.

mod alerts;
mod error;
mod notifications;
pub mod retention;
mod service;
mod view;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::Value;
use switchboard_hub::{App, Hub};
use switchboard_store::Page;
use tokio::sync::{Mutex, MutexGuard};

pub use alerts::{AlertQuery, CreateAlert};
pub use error::InboxError;
pub use notifications::{CreateNotification, NotificationQuery};
pub use service::InboxService;

/// Who is asking: a user and the groups their token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user.
    pub user: String,
    /// Groups from the token; server-managed `group:` memberships are added to these.
    pub groups: Vec<String>,
}

/// The inbox operations. One per server, shared by the API and the socket service.
#[derive(Default)]
pub struct Inbox {
    turns: Turns,
}

/// 64 locks; a user's or group's changes always take the same one.
struct Turns([Mutex<()>; 64]);

impl Default for Turns {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Mutex::new(())))
    }
}

impl Turns {
    async fn take(&self, app: &str, owner: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        (app, owner).hash(&mut hasher);
        self.0[(hasher.finish() % 64) as usize].lock().await
    }
}

/// Publishes events to one channel, in order (see [`Hub::push`]).
async fn push(hub: &Hub, app: &App, channel: &str, events: Vec<(&str, Value)>) {
    hub.push(app, events.into_iter().map(|(kind, data)| (channel.to_owned(), kind, data)).collect()).await;
}

/// Most rows one list returns; 20 when the caller does not say.
pub const MAX_PAGE: u32 = 100;

/// A list's page from its query parameters; a bad cursor or limit names the parameter.
fn page(pending_only: bool, cursor: Option<&str>, limit: Option<u32>) -> Result<Page, InboxError> {
    let before = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            InboxError::BadRequest(format!("`cursor` must be a `next_cursor` from an earlier page, not `{c}`"))
        })?),
    };
    let limit = limit.unwrap_or(20);
    if limit == 0 || limit > MAX_PAGE {
        return Err(InboxError::BadRequest(format!("`limit` must be 1 to {MAX_PAGE}")));
    }
    Ok(Page { pending_only, before, limit })
}

/// The cursor of the next page: the last row's, when the page was full.
fn next_cursor(page: Page, cursors: impl DoubleEndedIterator<Item = u64> + ExactSizeIterator) -> Option<String> {
    let full = cursors.len() == page.limit as usize;
    cursors.last().filter(|_| full).map(|c| c.to_string())
}

/// A new public id: a UUID v7, so ids sort by creation time.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
