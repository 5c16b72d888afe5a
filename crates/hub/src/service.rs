//! Built-in features beyond routing (the inbox now; chat and presence next) plug in here.
//!
//! A [`Service`] owns some client message types (`notification:read`, ...). The session hands
//! it each such message with the [`Caller`]; what it returns is the `reply` to a message that
//! carried `ref`, and a refusal becomes an `error` frame. Services publish through the
//! [`Hub`] they are given, so the hub owns all routing and a feature crate owns only its
//! domain. Services are given to [`Hub::new`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use switchboard_protocol::ErrorCode;

use crate::{App, ConnMeta, Hub};

/// Who sent a client message.
pub struct Caller {
    /// The app of the connection.
    pub app: Arc<App>,
    /// The connection: its user, groups and ids.
    pub meta: Arc<ConnMeta>,
}

/// Why a client message was refused: the `error` frame's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code the client can branch on.
    pub code: ErrorCode,
    /// What went wrong, naming the field for bad input.
    pub message: String,
}

impl Refusal {
    /// A refusal with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
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
}
