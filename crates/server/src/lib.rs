//! The Switchboard server as a library: the binary parses flags and signals, then calls
//! [`Server::build`] and [`Server::run`]; tests do the same on `127.0.0.1:0`.
//!
//! # Layout
//! - [`cli`]: the command line; [`Settings`]: file, environment and flags, layered.
//! - [`wire`]: the one place that chooses the store, the broker and the apps.
//! - [`demo`]: the zero-config demo app.
//! - [`shutdown`]: the shutdown choreography and the signal listener.
//! - `serve`: the HTTP/1.1 accept loop, with header, idle and incomplete-request bounds.
//! - `security`: `nosniff` on every answer; the web pages' Content-Security-Policy.

mod admin;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod embed;
pub mod hangup;
mod security;
mod serve;
mod settings;
pub mod shutdown;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use serde_json::json;
use switchboard_chat::{Chat, ChatService};
use switchboard_hub::{Hub, Service};
use switchboard_inbox::{Inbox, InboxService};
use tokio::net::TcpListener;

pub use settings::{HttpLimits, Settings};

/// A configured server, ready to run.
pub struct Server {
    hub: Hub,
    inbox: Arc<Inbox>,
    chat: Arc<Chat>,
    code: Arc<embed::CodeHandlers>,
    settings: Settings,
    demo: Option<demo::DemoCredentials>,
}

impl Server {
    /// Opens the store, loads the apps and builds the hub.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let loaded = wire::manifests(&settings)?;
        let store = wire::store(&settings.store).await?;
        let demo = match settings.manifests.is_empty() {
            true => Some(demo::DemoCredentials::load(store.as_ref()).await?),
            false => None,
        };
        let apps = wire::apps(&loaded, demo.as_ref())?;
        let broker = wire::broker(&settings.broker).await?;
        let inbox = Arc::new(Inbox::default());
        let chat = Arc::new(Chat::default());
        let code = Arc::new(embed::CodeHandlers::default());
        // Asked in order: the built-in features first, then handlers registered in code, so
        // the backend's webhook gets only the rest.
        let services: Vec<Arc<dyn Service>> = vec![
            Arc::new(InboxService::new(inbox.clone())),
            Arc::new(ChatService::new(chat.clone())),
            code.clone(),
            Arc::new(switchboard_handlers::Handlers::default()),
        ];
        let hub = Hub::new(apps, broker, store, settings.node_id.clone(), services);
        hub.set_history_queue(settings.history_queue);
        hub.gate().set_limits(settings.unauthenticated);
        hub.gate().set_trusted_proxies(settings.trusted_proxies.clone());
        // The control topics (disconnect-everywhere) are live before the first request.
        hub.settle().await;
        Ok(Self { hub, inbox, chat, code, settings, demo })
    }

    /// The hub, for embedding and tests.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The demo credentials, when serving the demo app.
    pub fn demo(&self) -> Option<&demo::DemoCredentials> {
        self.demo.as_ref()
    }

    /// Every route: endpoints, server API, operations, and the demo page in demo mode.
    pub fn router(&self) -> Router {
        let api =
            switchboard_api::ApiState { hub: self.hub.clone(), inbox: self.inbox.clone(), chat: self.chat.clone() };
        let mut router = switchboard_transport::router(&self.hub)
            .merge(switchboard_socketio::router(&self.hub))
            .merge(switchboard_api::router(api.clone()));
        if let Some(token) = &self.settings.admin_token {
            let token = Arc::new(switchboard_auth::ApiKeys::new([token.clone()]));
            router = router.merge(admin::router(admin::AdminState { token, api: api.clone() }));
        }
        if let Some(credentials) = &self.demo {
            router = router.merge(demo::router(demo::DemoState { credentials: credentials.clone(), api }));
        }
        router
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(self.hub.clone(), switchboard_api::client_cors))
            .layer(axum::middleware::from_fn(security::nosniff))
            .layer(axum::middleware::from_fn(log_request))
    }

    /// Starts the sweeps of expired rows (idempotency keys, history, the inbox's retention).
    pub fn spawn_background(&self) -> tokio::task::JoinSet<()> {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(shutdown::purge_loop(self.hub.clone()));
        tasks.spawn(switchboard_inbox::retention::run(self.hub.clone()));
        tasks
    }

    /// Serves until `shutdown` resolves, then drains (see [`shutdown::drain`]). Connections
    /// are bounded by the settings' [`HttpLimits`] (see `serve.rs`).
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let router = self.router();
        let stop_accepting = tokio_util::sync::CancellationToken::new();
        let serve = serve::serve(listener, router, self.settings.http, self.hub.clone(), stop_accepting.clone());
        let server = tokio::spawn(serve);
        let mut background = self.spawn_background();
        shutdown.await;
        shutdown::drain(&self.hub, &self.settings, stop_accepting, server).await;
        background.abort_all();
        Ok(())
    }
}

async fn not_found(uri: Uri) -> impl IntoResponse {
    let message = format!("no route for {}; see /api/v1/openapi.json", uri.path());
    (StatusCode::NOT_FOUND, axum::Json(json!({ "error": { "code": "not_found", "message": message } })))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> impl IntoResponse {
    let message = format!("{method} is not allowed on {}; see /api/v1/openapi.json", uri.path());
    let body = json!({ "error": { "code": "method_not_allowed", "message": message } });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body))
}

/// Logs every request at debug level, with tokens in the query redacted.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await; // the redacted copy of the URI costs an allocation
    }
    let method = request.method().clone();
    let uri = request.uri().path_and_query().map(|p| switchboard_auth::redact::uri(p.as_str())).unwrap_or_default();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "request");
    response
}
