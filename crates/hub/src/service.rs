//! Built-in features beyond routing (the inbox now; chat and presence next) plug in here.
//!
//! A [`Service`] owns some client message types (`notification:read`, ...). The session hands
//! it each such message with the [`Caller`]; what it returns is the `reply` to a message that
//! carried `ref`, and a refusal becomes an `error` frame. Services publish through the
//! [`Hub`] they are given, so the hub owns all routing and a feature crate owns only its
//! domain. Services are given to [`Hub::new`]; every service hears every connection of
//! every app come and go.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use switchboard_protocol::{ErrorCode, ServerFrame};

use crate::{App, ConnMeta, EndpointSpec, Hub};

/// Who sent a client message.
pub struct Caller {
    /// The app of the connection.
    pub app: Arc<App>,
    /// The endpoint it connected to.
    pub endpoint: Arc<EndpointSpec>,
    /// The connection: its user, groups and ids.
    pub meta: Arc<ConnMeta>,
}

/// What a service adds to a connection before `connected` (the connect hook).
#[derive(Debug, Default)]
pub struct Admission {
    /// More channels to subscribe the connection to.
    pub channels: Vec<String>,
    /// Fields for the `connected` frame's `data`.
    pub data: Option<Value>,
}

/// Why a client message was refused: an `error` frame's code and message, or a feature's
/// own error frame (chat answers `chat:error` with the message's `tempId`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The code the client can branch on.
    pub code: ErrorCode,
    /// What went wrong, naming the field for bad input.
    pub message: String,
    /// The frame's type: `error` unless a feature names its own.
    pub frame: &'static str,
    /// More fields for the frame's `data`, beside `code` and `message`.
    pub extra: Map<String, Value>,
}

impl Refusal {
    /// A refusal with a code and message, answered as an `error` frame.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), frame: "error", extra: Map::new() }
    }

    /// The same refusal answered as a `frame` frame with `extra` fields in its data.
    pub fn framed(mut self, frame: &'static str, extra: Map<String, Value>) -> Self {
        self.frame = frame;
        self.extra = extra;
        self
    }

    /// The frame to send, answering `reference`.
    pub(crate) fn encode(&self, reference: Option<&Value>) -> String {
        let mut data = self.extra.clone();
        // A backend's own code (from a handler's `error`) stands; otherwise the hub's.
        data.entry("code").or_insert_with(|| Value::String(self.code.as_str().into()));
        data.insert("message".into(), Value::String(self.message.clone()));
        ServerFrame::answer(self.frame, reference, Value::Object(data))
    }
}

/// News of another node, for a service that keeps state across nodes (presence).
#[derive(Debug, Clone, Copy)]
pub enum NodeEvent<'a> {
    /// A node was heard from for the first time, or restarted.
    Joined,
    /// The node's heartbeat, with this service's part of it.
    Beat(&'a Value),
    /// A message from this service on that node (see [`Hub::tell_nodes`]).
    Message(&'a Value),
    /// The node fell silent for [`crate::NODE_TIMEOUT`], or restarted: its state is gone.
    Lost,
}

/// A built-in feature that answers some client message types.
#[async_trait]
pub trait Service: Send + Sync {
    /// Whether this service answers messages of type `kind` from this caller (a feature the
    /// app turned off answers nothing, so its types are `unknown_type`).
    fn owns(&self, caller: &Caller, kind: &str) -> bool;

    /// Handles one message. `Ok(data)` is sent as the `reply` when the message carried `ref`.
    async fn handle(&self, hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal>;

    /// Shapes a refusal the hub made for one of this service's messages (the rate limit),
    /// so the client gets the same kind of error as from the service itself.
    fn reshape(&self, _kind: &str, _data: &Value, refusal: Refusal) -> Refusal {
        refusal
    }

    /// Before `connected`: may refuse the connection (its close reason) or add channels and
    /// data to it.
    async fn admit(&self, _hub: &Hub, _caller: &Caller) -> Result<Admission, switchboard_protocol::Disconnect> {
        Ok(Admission::default())
    }

    /// Whether the caller may subscribe to `channel`, whose namespace has the `proxy` policy;
    /// `None` when this service does not decide.
    async fn may_subscribe(&self, _hub: &Hub, _caller: &Caller, _channel: &str, _proxy_url: &str) -> Option<bool> {
        None
    }

    /// A connection of the app was registered (presence starts here).
    async fn connected(&self, _hub: &Hub, _caller: &Caller) {}

    /// A connection of the app ended.
    async fn disconnected(&self, _hub: &Hub, _caller: &Caller) {}

    /// The name this service's messages to other nodes travel under.
    fn name(&self) -> &'static str {
        ""
    }

    /// What this service adds to this node's heartbeat for `app`.
    fn beat(&self, _app: &App) -> Option<Value> {
        None
    }

    /// News of another node. Called in the order the node's messages arrive, so it must
    /// not block: queue slow work on a task.
    fn on_node(&self, _hub: &Hub, _app: &Arc<App>, _node: &str, _event: NodeEvent<'_>) {}
}
