//! The inbox over the socket: `notification:read`, `notification:read_all`,
//! `notification:delete` and `alert:acknowledge`, answered like their REST twins.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_hub::{Caller, Hub, Refusal, Service};
use switchboard_protocol::ErrorCode;

use crate::{Inbox, Member};

const NOTIFICATION_TYPES: [&str; 3] = ["notification:read", "notification:read_all", "notification:delete"];
const ALERT_TYPES: [&str; 1] = ["alert:acknowledge"];

/// The inbox's [`Service`]: what a connected user may do to their own inbox.
pub struct InboxService {
    inbox: Arc<Inbox>,
}

impl InboxService {
    /// The service over the server's one [`Inbox`].
    pub fn new(inbox: Arc<Inbox>) -> Self {
        Self { inbox }
    }
}

#[async_trait]
impl Service for InboxService {
    fn owns(&self, caller: &Caller, kind: &str) -> bool {
        let features = &caller.app.spec.features;
        (features.notifications && NOTIFICATION_TYPES.contains(&kind))
            || (features.alerts && ALERT_TYPES.contains(&kind))
    }

    async fn handle(&self, hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal> {
        let Some(user) = caller.meta.user_id.as_deref() else {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "anonymous connections have no inbox; connect with a token",
            ));
        };
        let (inbox, app) = (&self.inbox, &caller.app);
        let answer = match kind {
            "notification:read" => inbox.read_notification(hub, app, user, field(data, "notification_id")?).await,
            "notification:read_all" => inbox.read_all(hub, app, user).await,
            "notification:delete" => inbox.delete_notification(hub, app, user, field(data, "notification_id")?).await,
            _ => {
                let member = Member { user: user.to_owned(), groups: caller.meta.groups.clone() };
                inbox.acknowledge_alert(hub, app, &member, field(data, "alert_id")?).await
            }
        };
        answer.map_err(Refusal::from)
    }
}

/// A required string field of `data`, or a refusal naming it.
fn field<'d>(data: &'d Value, name: &str) -> Result<&'d str, Refusal> {
    match data.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(Refusal::new(ErrorCode::BadRequest, format!("field `data.{name}` must be a non-empty string"))),
        None => Err(Refusal::new(ErrorCode::BadRequest, format!("missing field `data.{name}`"))),
    }
}
