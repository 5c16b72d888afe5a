//! One event to one connection, on whichever node holds it: the server API's
//! `POST /connections/{id}/events`, for app code that picks a device from a user's list.

use serde_json::Value;
use switchboard_protocol::ServerFrame;

use super::control::{act_on_user, Act};
use super::Hub;
use crate::{App, HubError};

impl Hub {
    /// Sends `{"type": kind, "data": data}` to the connection `connection_id` of `app`;
    /// whether it was connected and took the frame. A connection of another app is never
    /// found: each app has its own registry.
    pub async fn send_to_connection(
        &self,
        app: &App,
        connection_id: &str,
        kind: &str,
        data: Value,
    ) -> Result<bool, HubError> {
        if kind.is_empty() {
            return Err(HubError::BadRequest("field `type` must be a non-empty string".into()));
        }
        let act = Act::Send { connection_id: connection_id.to_owned(), frame: ServerFrame::typed(kind, data) };
        // A connection id starts with its node's id, so one of this node's needs no asking.
        let here = connection_id.strip_prefix(self.node_id()).is_some_and(|rest| rest.starts_with('-'));
        let sent = match here {
            true => act_on_user(app, "", &act),
            false => self.ask(app, "", act).await.1,
        };
        Ok(sent > 0)
    }
}
