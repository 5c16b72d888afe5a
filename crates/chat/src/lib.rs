//! Built-in chat and presence (seed 003).
//!
//! Chat events travel on the participants' own `user:{user}` channels (fan-out on write):
//! the sender's devices get `chat:message:sent`, everyone else's `chat:message`, each from
//! durable user history, so an offline participant's queue survives restarts and a
//! reconnecting client resumes its chat with everything else. Participants therefore follow
//! a conversation live from the moment it exists, with no subscription to manage. Typing and
//! presence are signals: delivered live, never stored or replayed.
//!
//! # Layout
//! - [`Chat`]: the operations, shared by the HTTP API and the socket.
//! - `conversations.rs`, `messages.rs`, `receipts.rs`: conversations, messages (send, edit,
//!   delete, history, search), and delivery and read receipts.
//! - `typing.rs`, `presence.rs`: the two live-only trackers, with their timers.
//! - [`ChatService`]: the socket side (`chat:*`, `presence:set`, connects and disconnects).
//! - `view.rs`: the JSON clients see, in seed 003's camelCase.

mod conversations;
mod error;
mod messages;
mod presence;
mod receipts;
mod service;
mod typing;
mod view;

use serde_json::Value;
use switchboard_hub::{App, Hub};
use switchboard_protocol::Channel;

pub use conversations::CreateConversation;
pub use error::ChatError;
pub use messages::{MessagePage, SendMessage};
pub use presence::Presence;
pub use service::ChatService;
use typing::Typing;

/// Chat and presence. One per server, shared by the API and the socket service.
#[derive(Default)]
pub struct Chat {
    typing: Typing,
    /// Who is online, away or busy on this node.
    pub presence: Presence,
}

/// One event for one user's devices.
struct Delivery {
    user: String,
    kind: &'static str,
    data: Value,
}

impl Delivery {
    fn new(user: &str, kind: &'static str, data: Value) -> Self {
        Self { user: user.to_owned(), kind, data }
    }
}

/// Publishes events to users' channels, in order, as one batch (see [`Hub::push`]).
async fn push(hub: &Hub, app: &App, deliveries: Vec<Delivery>) {
    hub.push(app, deliveries.into_iter().map(|d| (format!("user:{}", d.user), d.kind, d.data)).collect()).await;
}

/// Sends a live-only event to each user's devices (typing, presence).
async fn signal(hub: &Hub, app: &App, users: &[String], kind: &str, data: &Value) {
    for user in users {
        if let Err(e) = hub.signal(app, &format!("user:{user}"), kind, data).await {
            tracing::debug!(app = %app.slug, user, error = %e, "signal not delivered");
        }
    }
}

/// Checks that `user` makes a valid `user:` channel, naming `field` if not.
fn check_user(field: &str, user: &str) -> Result<(), ChatError> {
    match Channel::parse(&format!("user:{user}")) {
        Ok(_) => Ok(()),
        Err(e) => Err(ChatError::BadRequest(format!("field `{field}`: `{user}`: {e}"))),
    }
}

/// A new public id: a UUID v7, so ids sort by creation time.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
