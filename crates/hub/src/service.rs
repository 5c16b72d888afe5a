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

use crate::{App, ConnMeta, Hub};

/// Who sent a client message.
pub struct Caller {
    /// The app of the connection.
    pub app: Arc<App>,
    /// The connection: its user, groups and ids.
    pub meta: Arc<ConnMeta>,
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
        data.insert("code".into(), Value::String(self.code.as_str().into()));
        data.insert("message".into(), Value::String(self.message.clone()));
        ServerFrame::answer(self.frame, reference, Value::Object(data))
    }
}

/// A built-in feature that answers some client message types.
#[async_trait]
pub trait Service: Send + Sync {
    /// Whether this service answers messages of type `kind` for `app` (a feature the app
    /// turned off answers nothing, so its types are `unknown_type`).
    fn owns(&self, app: &App, kind: &str) -> bool;

    /// Handles one message. `Ok(data)` is sent as the `reply` when the message carried `ref`.
    async fn handle(&self, hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal>;

    /// Shapes a refusal the hub made for one of this service's messages (the rate limit),
    /// so the client gets the same kind of error as from the service itself.
    fn reshape(&self, _kind: &str, _data: &Value, refusal: Refusal) -> Refusal {
        refusal
    }

    /// A connection of the app was registered (presence starts here).
    async fn connected(&self, _hub: &Hub, _caller: &Caller) {}

    /// A connection of the app ended.
    async fn disconnected(&self, _hub: &Hub, _caller: &Caller) {}
}
