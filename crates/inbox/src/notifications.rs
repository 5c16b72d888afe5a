//! Notifications: one user's inbox with read marks. Every change is pushed to `user:{user}`
//! with the new unread count, so reading on the phone clears the badge on the laptop.

use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_hub::{unix_ms, App, Hub};
use switchboard_protocol::Channel;
use switchboard_store::NewNotification;

use crate::{new_id, next_cursor, page, push, view, Inbox, InboxError};

/// `POST /notifications`: seed 003's `NotificationHandler.create_and_emit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNotification {
    /// The user it is for.
    pub user: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub message: String,
    /// The app's own category (default `info`).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Anything else the front end needs, e.g. a link.
    #[serde(default)]
    pub data: Option<Value>,
}

/// `GET /me/notifications`.
#[derive(Debug, Default, Deserialize)]
pub struct NotificationQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread_only: bool,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Rows per page: 1 to 100, default 20.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl Inbox {
    /// Stores a notification, then pushes `notification:new` and `notification:count`.
    pub async fn create_notification(
        &self,
        hub: &Hub,
        app: &App,
        req: CreateNotification,
    ) -> Result<Value, InboxError> {
        let channel = user_channel(&req.user)?;
        let new = NewNotification {
            app: app.spec.slug.clone(),
            user: req.user,
            id: new_id(),
            kind: req.kind.unwrap_or_else(|| "info".into()),
            title: req.title,
            message: req.message,
            data: req.data.unwrap_or_else(|| json!({})).to_string(),
            created_at_ms: unix_ms(),
        };
        let _turn = self.turns.take(&app.spec.slug, &new.user).await;
        let keep = app.spec.inbox.notifications.max_count;
        let unread = hub.store().insert_notification(&new, keep).await?;
        let created = view::notification(&switchboard_store::Notification { fields: new, read_at_ms: None, cursor: 0 });
        push(hub, app, &channel, vec![("notification:new", created.clone()), count(unread)]).await;
        Ok(created)
    }

    /// A page of the user's notifications, newest first, with the unread count.
    pub async fn notifications(
        &self,
        hub: &Hub,
        app: &App,
        user: &str,
        q: &NotificationQuery,
    ) -> Result<Value, InboxError> {
        let page = page(q.unread_only, q.cursor.as_deref(), q.limit)?;
        let store = hub.store();
        let rows = store.notifications(&app.spec.slug, user, page).await?;
        let unread = store.unread_notifications(&app.spec.slug, user).await?;
        Ok(json!({
            "notifications": rows.iter().map(view::notification).collect::<Vec<_>>(),
            "next_cursor": next_cursor(page, rows.iter().map(|n| n.cursor)),
            "unread": unread,
        }))
    }

    /// `{unread}`.
    pub async fn unread_count(&self, hub: &Hub, app: &App, user: &str) -> Result<Value, InboxError> {
        Ok(json!({ "unread": hub.store().unread_notifications(&app.spec.slug, user).await? }))
    }

    /// Marks one read; pushes `notification:read` and the count (only the first time).
    pub async fn read_notification(&self, hub: &Hub, app: &App, user: &str, id: &str) -> Result<Value, InboxError> {
        let _turn = self.turns.take(&app.spec.slug, user).await;
        let now = unix_ms();
        let store = hub.store();
        let mark = store.read_notification(&app.spec.slug, user, id, now).await?.ok_or_else(|| missing(id))?;
        let unread = store.unread_notifications(&app.spec.slug, user).await?;
        let read = json!({ "notification_id": id, "read_at": switchboard_hub::rfc3339(mark.at_ms) });
        if mark.first {
            push(hub, app, &user_channel(user)?, vec![("notification:read", read.clone()), count(unread)]).await;
        }
        Ok(with_unread(read, unread))
    }

    /// Marks every unread one read; pushes `notification:read_all` and the count.
    pub async fn read_all(&self, hub: &Hub, app: &App, user: &str) -> Result<Value, InboxError> {
        let _turn = self.turns.take(&app.spec.slug, user).await;
        let now = unix_ms();
        let store = hub.store();
        let changed = store.read_all_notifications(&app.spec.slug, user, now).await?;
        let unread = store.unread_notifications(&app.spec.slug, user).await?;
        let all = json!({ "read": changed, "read_at": switchboard_hub::rfc3339(now) });
        if changed > 0 {
            push(hub, app, &user_channel(user)?, vec![("notification:read_all", all.clone()), count(unread)]).await;
        }
        Ok(with_unread(all, unread))
    }

    /// Deletes one; pushes `notification:deleted` and the count.
    pub async fn delete_notification(&self, hub: &Hub, app: &App, user: &str, id: &str) -> Result<Value, InboxError> {
        let _turn = self.turns.take(&app.spec.slug, user).await;
        let store = hub.store();
        if !store.delete_notification(&app.spec.slug, user, id).await? {
            return Err(missing(id));
        }
        let unread = store.unread_notifications(&app.spec.slug, user).await?;
        let deleted = json!({ "notification_id": id });
        push(hub, app, &user_channel(user)?, vec![("notification:deleted", deleted.clone()), count(unread)]).await;
        Ok(with_unread(deleted, unread))
    }
}

/// `user:{user}`, checked the way the hub checks channel names.
fn user_channel(user: &str) -> Result<String, InboxError> {
    let channel = format!("user:{user}");
    match Channel::parse(&channel) {
        Ok(_) => Ok(channel),
        Err(e) => Err(InboxError::BadRequest(format!("field `user`: {e}"))),
    }
}

fn count(unread: u64) -> (&'static str, Value) {
    ("notification:count", json!({ "unread": unread }))
}

fn with_unread(mut answer: Value, unread: u64) -> Value {
    answer["unread"] = json!(unread);
    answer
}

/// Unknown and another user's notifications look the same: the caller learns nothing.
fn missing(id: &str) -> InboxError {
    InboxError::NotFound(format!("you have no notification `{id}`"))
}
