//! Switchboard inside your own axum app (seed 004's API, typed): mount its routes beside
//! yours, handle client messages in Rust, broadcast, and look at or write to connections.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use serde_json::json;
//! use switchboard::embed::{Embedded, HandlerError, Message};
//!
//! let switchboard = Embedded::start(switchboard::Settings::for_manifests(vec!["my_app.json".into()])).await?;
//! switchboard.on_message("my_app", "realtime", |message: Message| async move {
//!     match message.kind.as_str() {
//!         "ping_me" => Ok(json!({ "pong": message.data })),
//!         other => Err(HandlerError::new("unknown", format!("no handler for {other}"))),
//!     }
//! });
//! let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" })).merge(switchboard.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use switchboard_hub::{Caller, Hub, Refusal, Service};
use switchboard_protocol::api::{ConnectionInfo, PublishRequest, PublishResponse};
use switchboard_protocol::{ErrorCode, ServerFrame};

use crate::{Server, Settings};

/// A client message for an in-code handler.
#[derive(Debug, Clone)]
pub struct Message {
    /// The app's slug.
    pub app: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// The connection it came from.
    pub connection: ConnectionInfo,
    /// Its `type`.
    pub kind: String,
    /// Its `data`.
    pub data: Value,
}

/// A handler's refusal: sent to the client as `error {code, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// The app's own code.
    pub code: String,
    /// For the client.
    pub message: String,
}

impl HandlerError {
    /// A refusal with the app's code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// Handles the client messages of one app endpoint in code; `Ok` is the reply.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles one message.
    async fn handle(&self, message: Message) -> Result<Value, HandlerError>;
}

#[async_trait]
impl<F, Fut> MessageHandler for F
where
    F: Fn(Message) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, HandlerError>> + Send,
{
    async fn handle(&self, message: Message) -> Result<Value, HandlerError> {
        self(message).await
    }
}

/// The in-code handlers, a hub [`Service`] asked before the `handler_url` webhook.
#[derive(Default)]
pub(crate) struct CodeHandlers {
    by_endpoint: RwLock<HashMap<(String, String), Arc<dyn MessageHandler>>>,
}

impl CodeHandlers {
    fn get(&self, app: &str, endpoint: &str) -> Option<Arc<dyn MessageHandler>> {
        let handlers = self.by_endpoint.read().unwrap_or_else(|e| e.into_inner());
        handlers.get(&(app.to_owned(), endpoint.to_owned())).cloned()
    }
}

#[async_trait]
impl Service for CodeHandlers {
    fn owns(&self, caller: &Caller, _kind: &str) -> bool {
        self.get(&caller.app.spec.slug, &caller.endpoint.name).is_some()
    }

    async fn handle(&self, _hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal> {
        let Some(handler) = self.get(&caller.app.spec.slug, &caller.endpoint.name) else { return Ok(Value::Null) };
        let message = Message {
            app: caller.app.spec.slug.clone(),
            endpoint: caller.endpoint.name.clone(),
            connection: caller.meta.info(),
            kind: kind.to_owned(),
            data: data.clone(),
        };
        handler.handle(message).await.map_err(|e| {
            let mut extra = Map::new();
            extra.insert("code".into(), json!(e.code));
            Refusal::new(ErrorCode::HandlerFailed, e.message).framed("error", extra)
        })
    }
}

/// Switchboard embedded in another program.
pub struct Embedded {
    server: Server,
    /// The sweeps; dropping the set stops them.
    _background: tokio::task::JoinSet<()>,
}

impl Embedded {
    /// Builds Switchboard for `settings` and starts its background work (expiry and
    /// retention sweeps). Serve [`Embedded::router`] from your own axum server.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let server = Server::build(settings).await?;
        let background = server.spawn_background();
        Ok(Self { server, _background: background })
    }

    /// Switchboard's routes (sockets, server and client API, operations), to merge into
    /// your router. It needs `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(&self) -> axum::Router {
        self.server.router()
    }

    /// The hub, for everything else.
    pub fn hub(&self) -> &Hub {
        self.server.hub()
    }

    /// Handles the client messages of `app`'s `endpoint` that the hub and its built-in
    /// features do not own; replaces an earlier handler of the same endpoint.
    pub fn on_message(&self, app: &str, endpoint: &str, handler: impl MessageHandler + 'static) {
        let mut handlers = self.server.code.by_endpoint.write().unwrap_or_else(|e| e.into_inner());
        handlers.insert((app.to_owned(), endpoint.to_owned()), Arc::new(handler));
    }

    /// Publishes `{type, data}` to everyone connected to `app` (`broadcast`), or to one
    /// user's devices only (`user:{user}`).
    pub async fn broadcast_to_app(
        &self,
        app: &str,
        kind: &str,
        data: &Value,
        user: Option<&str>,
    ) -> anyhow::Result<PublishResponse> {
        let app = self.app(app)?;
        let channel = user.map_or_else(|| "broadcast".to_owned(), |u| format!("user:{u}"));
        let data = serde_json::value::to_raw_value(data)?;
        let request = PublishRequest { channels: vec![channel], kind: kind.to_owned(), data, idempotency_key: None };
        Ok(self.hub().publish(&app, request).await?)
    }

    /// How many connections `app` has on this node.
    pub fn connection_count(&self, app: &str) -> anyhow::Result<usize> {
        Ok(self.app(app)?.registry.count())
    }

    /// The live connections of one user of `app` on this node (the server API's list covers
    /// every node).
    pub fn connections_of(&self, app: &str, user: &str) -> anyhow::Result<Vec<ConnectionInfo>> {
        let app = self.app(app)?;
        Ok(self.hub().user_connections(&app, user))
    }

    /// Sends `{type, data}` to one connection; `false` when it is not connected here.
    pub fn send_to_connection(&self, app: &str, connection_id: &str, kind: &str, data: Value) -> anyhow::Result<bool> {
        let app = self.app(app)?;
        let Some(outbox) = app.registry.find(connection_id) else { return Ok(false) };
        Ok(outbox.push(bytes::Bytes::from(ServerFrame::typed(kind, data))).is_ok())
    }

    fn app(&self, slug: &str) -> anyhow::Result<Arc<switchboard_hub::App>> {
        self.hub().app(slug).ok_or_else(|| anyhow::anyhow!("no app `{slug}` on this server"))
    }
}
