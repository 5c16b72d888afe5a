//! Alerts: one group's (seed 003's account alerts), acknowledged by each member for
//! themself. New and deleted alerts are pushed to `group:{group}`; a member's own
//! acknowledgement goes to `user:{user}`, on every device of that member.

use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_hub::{rfc3339, unix_ms, App, Hub};
use switchboard_protocol::Channel;
use switchboard_store::{Alert, NewAlert};

use crate::{new_id, next_cursor, page, push, view, Inbox, InboxError, Member};

/// The severities an alert may have.
pub(crate) const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// `POST /alerts`: seed 003's `AlertHandler.create_and_emit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAlert {
    /// The group (seed 003's account) it is for.
    pub group: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub message: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// The app's own category (default `alert`).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Anything else the front end needs.
    #[serde(default)]
    pub data: Option<Value>,
}

/// `GET /me/alerts`.
#[derive(Debug, Default, Deserialize)]
pub struct AlertQuery {
    /// Only this group's (one of the caller's).
    #[serde(default)]
    pub group: Option<String>,
    /// Only those the caller has not acknowledged.
    #[serde(default)]
    pub unacknowledged_only: bool,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Rows per page: 1 to 100, default 20.
    #[serde(default)]
    pub limit: Option<u32>,
}

impl Inbox {
    /// Stores an alert, then pushes `alert:new` and `alert:count` to the group.
    pub async fn create_alert(&self, hub: &Hub, app: &App, req: CreateAlert) -> Result<Value, InboxError> {
        let channel = group_channel(&req.group)?;
        if !SEVERITIES.contains(&req.severity.as_str()) {
            let message = format!("field `severity`: `{}` is not one of {SEVERITIES:?}", req.severity);
            return Err(InboxError::BadRequest(message));
        }
        let new = NewAlert {
            app: app.spec.slug.clone(),
            group: req.group,
            id: new_id(),
            kind: req.kind.unwrap_or_else(|| "alert".into()),
            title: req.title,
            message: req.message,
            severity: req.severity,
            data: req.data.unwrap_or_else(|| json!({})).to_string(),
            created_at_ms: unix_ms(),
        };
        let _turn = self.turns.take(&app.spec.slug, &channel).await;
        let total = hub.store().insert_alert(&new, app.spec.inbox.alerts.max_count).await?;
        let created = view::alert(&Alert { fields: new, acknowledged_at_ms: None, cursor: 0 });
        let group = &created["group"];
        let events = vec![("alert:new", created.clone()), ("alert:count", json!({ "group": group, "total": total }))];
        push(hub, app, &channel, events).await;
        Ok(created)
    }

    /// A page of the alerts of the caller's groups (or of one of them), newest first.
    pub async fn alerts(&self, hub: &Hub, app: &App, member: &Member, q: &AlertQuery) -> Result<Value, InboxError> {
        let page = page(q.unacknowledged_only, q.cursor.as_deref(), q.limit)?;
        let mut groups = groups(hub, app, member).await?;
        let unacknowledged = hub.store().unacknowledged_alerts(&app.spec.slug, &member.user, &groups).await?;
        if let Some(only) = &q.group {
            if !groups.contains(only) {
                return Err(InboxError::Forbidden(format!("you are not a member of group `{only}`")));
            }
            groups = vec![only.clone()];
        }
        let rows = hub.store().alerts(&app.spec.slug, &member.user, &groups, page).await?;
        Ok(json!({
            "alerts": rows.iter().map(view::alert).collect::<Vec<_>>(),
            "next_cursor": next_cursor(page, rows.iter().map(|a| a.cursor)),
            "unacknowledged": unacknowledged,
        }))
    }

    /// `{unacknowledged}` over all the caller's groups.
    pub async fn unacknowledged_count(&self, hub: &Hub, app: &App, member: &Member) -> Result<Value, InboxError> {
        let groups = groups(hub, app, member).await?;
        let count = hub.store().unacknowledged_alerts(&app.spec.slug, &member.user, &groups).await?;
        Ok(json!({ "unacknowledged": count }))
    }

    /// Records the caller's acknowledgement; pushes `alert:acknowledged` and the caller's
    /// `alert:count` to `user:{user}` (only the first time).
    pub async fn acknowledge_alert(
        &self,
        hub: &Hub,
        app: &App,
        member: &Member,
        id: &str,
    ) -> Result<Value, InboxError> {
        let store = hub.store();
        let groups = groups(hub, app, member).await?;
        let alert = store.alert(&app.spec.slug, id).await?.filter(|a| groups.contains(&a.fields.group));
        let alert = alert.ok_or_else(|| InboxError::NotFound(format!("your groups have no alert `{id}`")))?;
        let _turn = self.turns.take(&app.spec.slug, &member.user).await;
        let now = unix_ms();
        let acked = store.acknowledge_alert(&app.spec.slug, &member.user, id, now).await?;
        // Deleted between the two reads: it is gone either way.
        let acked = acked.ok_or_else(|| InboxError::NotFound(format!("your groups have no alert `{id}`")))?;
        let unacknowledged = store.unacknowledged_alerts(&app.spec.slug, &member.user, &groups).await?;
        let ack = json!({ "alert_id": id, "group": alert.fields.group, "acknowledged_at": rfc3339(acked) });
        if acked == now {
            let count = json!({ "unacknowledged": unacknowledged });
            let user = format!("user:{}", member.user);
            push(hub, app, &user, vec![("alert:acknowledged", ack.clone()), ("alert:count", count)]).await;
        }
        let mut answer = ack;
        answer["unacknowledged"] = json!(unacknowledged);
        Ok(answer)
    }

    /// Deletes an alert; pushes `alert:deleted` and `alert:count` to its group.
    pub async fn delete_alert(&self, hub: &Hub, app: &App, id: &str) -> Result<Value, InboxError> {
        let store = hub.store();
        let alert = store.alert(&app.spec.slug, id).await?;
        let alert = alert.ok_or_else(|| InboxError::NotFound(format!("no alert `{id}`")))?;
        let channel = group_channel(&alert.fields.group)?;
        let _turn = self.turns.take(&app.spec.slug, &channel).await;
        let Some(group) = store.delete_alert(&app.spec.slug, id).await? else {
            return Err(InboxError::NotFound(format!("no alert `{id}`")));
        };
        let total = store.group_alerts(&app.spec.slug, &group).await?;
        let deleted = json!({ "alert_id": id, "group": group });
        let events =
            vec![("alert:deleted", deleted.clone()), ("alert:count", json!({ "group": group, "total": total }))];
        push(hub, app, &channel, events).await;
        Ok(deleted)
    }
}

/// The caller's groups: the token's, and the server-managed `group:` memberships.
async fn groups(hub: &Hub, app: &App, member: &Member) -> Result<Vec<String>, InboxError> {
    let mut groups = member.groups.clone();
    let managed = hub.store().memberships(&app.spec.slug, &member.user).await?;
    groups.extend(managed.iter().filter_map(|c| c.strip_prefix("group:")).map(str::to_owned));
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// `group:{group}`, checked the way the hub checks channel names.
fn group_channel(group: &str) -> Result<String, InboxError> {
    let channel = format!("group:{group}");
    match Channel::parse(&channel) {
        Ok(_) => Ok(channel),
        Err(e) => Err(InboxError::BadRequest(format!("field `group`: {e}"))),
    }
}
