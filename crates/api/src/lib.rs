//! The HTTP server API that app backends call, plus the operations routes.
//!
//! # Layout
//! - [`router`]: merges each area's router: `publish`, `members`, `history`, `connections`,
//!   `notifications`, `alerts`, `chat`, `presence`, `ops`.
//! - [`AppAccess`]: the extractor that finds the app in the path and checks its API key
//!   (no key 401, another app's key 403). [`UserAccess`]: the same for the client API
//!   (`/me/...`), with the user's JWT.
//! - [`ApiError`]: the one error type at the HTTP edge, rendered as
//!   `{"error": {"code", "message"}}` with a fitting status; internals are logged, not sent.
//! - [`JsonBody`]: a JSON body whose errors name the field.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`client_cors`]: CORS for the client API (`/me/...`), from the app's `allowed_origins`; a
//!   middleware for the outermost router, since preflights must be answered before any
//!   method routing.
//! - `openapi.json`: the document served at `/api/v1/openapi.json`.

mod access;
mod alerts;
mod body;
mod chat;
mod connections;
mod cors;
mod error;
mod history;
mod members;
pub mod metrics;
mod notifications;
mod ops;
mod presence;
mod publish;
mod user;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::Router;
use switchboard_chat::Chat;
use switchboard_hub::{App, Hub};
use switchboard_inbox::Inbox;
use switchboard_protocol::ErrorCode;

pub use access::AppAccess;
pub use body::{JsonBody, QueryParams};
pub use cors::client_api as client_cors;
pub use error::ApiError;
pub use user::UserAccess;

/// What every route may use: the hub, and the features it shares with the socket side.
#[derive(Clone)]
pub struct ApiState {
    /// The hub.
    pub hub: Hub,
    /// Notifications and alerts.
    pub inbox: Arc<Inbox>,
    /// Chat and presence.
    pub chat: Arc<Chat>,
}

impl FromRef<ApiState> for Hub {
    fn from_ref(state: &ApiState) -> Self {
        state.hub.clone()
    }
}

/// The OpenAPI 3.1 document describing every route of this crate.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every HTTP API route.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(publish::router())
        .merge(notifications::router())
        .merge(alerts::router())
        .merge(chat::router())
        .merge(presence::router())
        .merge(members::router())
        .merge(history::router())
        .merge(connections::router())
        .merge(ops::router())
        .with_state(state)
}

/// 404 for a built-in feature the app turned off, naming the switch.
fn feature(app: &App, on: bool, name: &str) -> Result<(), ApiError> {
    if on {
        return Ok(());
    }
    let message = format!("app `{}` has {name} turned off (features.{name} in its manifest)", app.spec.slug);
    Err(ApiError::new(ErrorCode::NotFound, message))
}
