//! The HTTP server API that app backends call, plus the operations routes.
//!
//! # Layout
//! - [`router`]: merges each area's router: `publish`, `members`, `history`, `connections`, `ops`.
//! - [`AppAccess`]: the extractor that finds the app in the path and checks its API key
//!   (no key 401, another app's key 403).
//! - [`ApiError`]: the one error type at the HTTP edge, rendered as
//!   `{"error": {"code", "message"}}` with a fitting status; internals are logged, not sent.
//! - [`JsonBody`]: a JSON body whose errors name the field.
//! - `openapi.json`: the document served at `/api/v1/openapi.json`.

mod access;
mod body;
mod connections;
mod error;
mod history;
mod members;
mod ops;
mod publish;

use axum::Router;
use switchboard_hub::Hub;

pub use access::AppAccess;
pub use body::JsonBody;
pub use error::ApiError;

/// The OpenAPI 3.1 document describing every route of this crate.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every HTTP API route, with the hub as state.
pub fn router(hub: Hub) -> Router {
    Router::new()
        .merge(publish::router())
        .merge(members::router())
        .merge(history::router())
        .merge(connections::router())
        .merge(ops::router())
        .with_state(hub)
}
