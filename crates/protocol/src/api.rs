//! Bodies of the HTTP server API (`/api/v1/apps/{app}/...`).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// `POST /publish`: one event to one or more channels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Channels to publish to; at least one.
    pub channels: Vec<String>,
    /// The event's `type`, e.g. `family_invitation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's `data`, passed through untouched; `null` when absent.
    #[serde(default = "null_data")]
    pub data: Box<RawValue>,
    /// Publishing the same key again (within 24 h) publishes nothing and returns the first result.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer to a publish.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishResponse {
    /// The event's id.
    pub id: String,
    /// Positions per channel with history (`{epoch, seq}`); empty for channels without history.
    pub positions: Map<String, Value>,
}

/// Where an event sits in its channel's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    /// Changes only when the channel's history is lost; positions of another epoch are void.
    pub epoch: String,
    /// Increases by one per event of the channel.
    pub seq: u64,
}

/// `GET /channels/{channel}/history`: the events after `since`, oldest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The channel.
    pub channel: String,
    /// The channel's current epoch.
    pub epoch: String,
    /// The seq of the channel's newest event (0 before the first).
    pub latest: u64,
    /// `false` when events after `since` were already dropped (size or TTL) or `since` names
    /// another epoch: the caller cannot rebuild a complete sequence from history alone.
    pub complete: bool,
    /// The events, each as a client receives it.
    pub events: Vec<Box<RawValue>>,
}

/// `POST /publish/batch`: several publishes, applied in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The events, each shaped as a [`PublishRequest`].
    pub events: Vec<PublishRequest>,
}

/// The answer to a batch: one result per event, in order.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    /// One result per event.
    pub results: Vec<PublishResponse>,
}

/// One live connection, as seed 004 describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionInfo {
    /// Unique per connection.
    pub connection_id: String,
    /// The app the connection belongs to.
    pub app_slug: String,
    /// The token's user, or `null` for anonymous connections.
    pub user_id: Option<String>,
    /// The token's email claim, when present.
    pub user_email: Option<String>,
    /// When the connection was authenticated, RFC 3339.
    pub connected_at: String,
    /// The manifest's endpoint name (`realtime`).
    pub endpoint: String,
    /// `native` or `socket.io`.
    pub protocol: String,
    /// The peer's address.
    pub remote_addr: String,
    /// The device the connection named (`?device=` or the token's `device` claim).
    pub device: Option<String>,
}

fn null_data() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
}
