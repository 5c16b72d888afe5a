//! Control messages between nodes: what an API call on one node must also do on the others
//! (disconnect a user everywhere). They travel on one internal topic per app, `$control`,
//! which no client can name (a channel name needs a namespace), so every broker carries them
//! like events.

use serde::{Deserialize, Serialize};
use switchboard_broker::{Envelope, Topic};
use switchboard_protocol::Disconnect;

use super::Hub;
use crate::{App, HubError};

/// The internal topic of an app's control messages.
pub(crate) const CONTROL: &str = "$control";

#[derive(Serialize, Deserialize)]
struct Control {
    /// The node that sent it, which has already acted.
    node: String,
    /// `disconnect`: close every connection of `user`.
    op: String,
    user: String,
}

impl Hub {
    /// Listens to every app's control topic; called once at start.
    pub(crate) fn listen_for_control(&self) {
        for app in self.apps() {
            self.shared.broker.subscribe(Topic { app: app.slug.clone(), channel: CONTROL.into() });
        }
    }

    /// Closes every connection of a user with 4403, on this node (the count returned) and on
    /// every other node.
    pub async fn disconnect_user(&self, app: &App, user: &str) -> Result<usize, HubError> {
        let closed = close_user(app, user);
        let message = Control { node: self.node_id().to_owned(), op: "disconnect".into(), user: user.to_owned() };
        let payload = serde_json::to_vec(&message).map_err(|e| HubError::Internal(e.to_string()))?;
        let envelope = Envelope { app: app.slug.clone(), channel: CONTROL.into(), payload: payload.into(), seq: 0 };
        self.shared.broker.publish(envelope).await?;
        Ok(closed)
    }

    /// A control message from the broker.
    pub(crate) fn on_control(&self, app: &App, payload: &[u8]) {
        match serde_json::from_slice::<Control>(payload) {
            Ok(control) if control.node == self.node_id() => {} // already done here
            Ok(control) if control.op == "disconnect" => {
                close_user(app, &control.user);
            }
            Ok(control) => tracing::warn!(op = %control.op, "unknown control message from another node"),
            Err(e) => tracing::warn!(error = %e, "unreadable control message"),
        }
    }
}

fn close_user(app: &App, user: &str) -> usize {
    let reason = Disconnect::new(Disconnect::FORBIDDEN, "disconnected by the server");
    let ids = app.registry.user_connections(user);
    ids.into_iter().filter_map(|id| app.registry.get(id)).map(|(_, outbox)| outbox.close(reason.clone(), false)).count()
}
