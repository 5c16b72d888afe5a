//! Notifications and alerts: the rows behind the built-in inbox (seed 003).
//!
//! A notification belongs to one user and has a read mark. An alert belongs to one group and
//! each member acknowledges it for themself, so the acknowledgement is a row per user.
//! Lists are newest first and paged by `cursor`: a number that only grows, so a page never
//! shifts when newer rows arrive.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreError;

/// A notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The app.
    pub app: String,
    /// The user it is for.
    pub user: String,
    /// Its public id.
    pub id: String,
    /// The seed's `type` (`task`, `info`, ...).
    pub kind: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub message: String,
    /// Extra JSON, as text.
    pub data: String,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The fields it was created with.
    pub fields: NewNotification,
    /// When its user read it, Unix milliseconds.
    pub read_at_ms: Option<u64>,
    /// Its place in the user's list: larger is newer.
    pub cursor: u64,
}

/// An alert to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// The app.
    pub app: String,
    /// The group it is for.
    pub group: String,
    /// Its public id.
    pub id: String,
    /// The seed's `type`.
    pub kind: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub message: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Extra JSON, as text.
    pub data: String,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A stored alert, as one user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The fields it was created with.
    pub fields: NewAlert,
    /// When this user acknowledged it, Unix milliseconds.
    pub acknowledged_at_ms: Option<u64>,
    /// Its place in the group's list: larger is newer.
    pub cursor: u64,
}

/// Which notifications to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Only unread notifications, or only unacknowledged alerts.
    pub pending_only: bool,
    /// Only rows older than this cursor (the previous page's last).
    pub before: Option<u64>,
    /// At most this many rows.
    pub limit: u32,
}

/// How long and how many of one kind of inbox row an app keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Rows older than this go.
    pub max_age: Duration,
    /// Per user (notifications) or per group (alerts), only the newest this many stay.
    pub max_count: u32,
}

/// The inbox part of the store. See the crate docs for the common contract.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Stores a notification, keeping only the user's newest `keep`; returns the unread count.
    async fn insert_notification(&self, new: &NewNotification, keep: u32) -> Result<u64, StoreError>;
    /// A user's notifications, newest first.
    async fn notifications(&self, app: &str, user: &str, page: Page) -> Result<Vec<Notification>, StoreError>;
    /// How many of a user's notifications are unread.
    async fn unread_notifications(&self, app: &str, user: &str) -> Result<u64, StoreError>;
    /// Marks one of the user's notifications read (once: a second read keeps the first time).
    /// `None` when the user has no notification with that id.
    async fn read_notification(
        &self,
        app: &str,
        user: &str,
        id: &str,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError>;
    /// Marks every unread notification of the user read; returns how many changed.
    async fn read_all_notifications(&self, app: &str, user: &str, at_ms: u64) -> Result<u64, StoreError>;
    /// Deletes one of the user's notifications; `false` when there was none.
    async fn delete_notification(&self, app: &str, user: &str, id: &str) -> Result<bool, StoreError>;
    /// Stores an alert, keeping only the group's newest `keep`; returns the group's count.
    async fn insert_alert(&self, new: &NewAlert, keep: u32) -> Result<u64, StoreError>;
    /// One alert, without anyone's acknowledgement.
    async fn alert(&self, app: &str, id: &str) -> Result<Option<Alert>, StoreError>;
    /// The alerts of `groups`, newest first, with `user`'s acknowledgements.
    async fn alerts(&self, app: &str, user: &str, groups: &[String], page: Page) -> Result<Vec<Alert>, StoreError>;
    /// How many alerts of `groups` the user has not acknowledged.
    async fn unacknowledged_alerts(&self, app: &str, user: &str, groups: &[String]) -> Result<u64, StoreError>;
    /// How many alerts a group has.
    async fn group_alerts(&self, app: &str, group: &str) -> Result<u64, StoreError>;
    /// Records that `user` acknowledged an alert (once: a second keeps the first time).
    /// `None` when there is no such alert.
    async fn acknowledge_alert(&self, app: &str, user: &str, id: &str, at_ms: u64) -> Result<Option<u64>, StoreError>;
    /// Deletes an alert and its acknowledgements; returns its group, `None` when there was none.
    async fn delete_alert(&self, app: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Applies an app's retention as of `now_ms`; returns how many rows went.
    async fn purge_inbox(
        &self,
        app: &str,
        notifications: Retention,
        alerts: Retention,
        now_ms: u64,
    ) -> Result<u64, StoreError>;
}

/// The cutoff for rows older than `max_age`, in Unix milliseconds (never negative).
pub(crate) fn cutoff(now_ms: u64, max_age: Duration) -> i64 {
    now_ms.saturating_sub(max_age.as_millis() as u64) as i64
}

/// A limit as the database takes it.
pub(crate) fn limit(page: Page) -> i64 {
    i64::from(page.limit)
}

/// The exclusive upper cursor of a page (no cursor: everything).
pub(crate) fn before(page: Page) -> i64 {
    page.before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64)
}

/// A notification as both databases return it: cursor, id, user, kind, title, message,
/// data, created, read.
pub(crate) type NotificationRow = (i64, String, String, String, String, String, String, i64, Option<i64>);

/// An alert as both databases return it: cursor, id, group, kind, title, message, severity,
/// data, created, acknowledged.
pub(crate) type AlertRow = (i64, String, String, String, String, String, String, String, i64, Option<i64>);

pub(crate) fn notification(app: &str, row: NotificationRow) -> Notification {
    let (cursor, id, user, kind, title, message, data, created, read) = row;
    let fields =
        NewNotification { app: app.into(), user, id, kind, title, message, data, created_at_ms: created as u64 };
    Notification { fields, read_at_ms: read.map(|r| r as u64), cursor: cursor as u64 }
}

pub(crate) fn alert(app: &str, row: AlertRow) -> Alert {
    let (cursor, id, group, kind, title, message, severity, data, created, acked) = row;
    let fields =
        NewAlert { app: app.into(), group, id, kind, title, message, severity, data, created_at_ms: created as u64 };
    Alert { fields, acknowledged_at_ms: acked.map(|a| a as u64), cursor: cursor as u64 }
}

/// When a notification was read, and whether this call read it (a repeat, even within the
/// same millisecond, is not the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMark {
    /// Unix milliseconds of the first read.
    pub at_ms: u64,
    /// This call marked it read.
    pub first: bool,
}
