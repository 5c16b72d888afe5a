//! The admin console at `/admin`, on only when an admin token is configured: the page, its
//! script and styles (built into the binary, served under a strict policy: see `security`)
//! and the JSON it reads, under `/admin/api/`, each call with the token as a bearer. Counts,
//! traffic, connection lists and disconnects cover the cluster; channels and the live tail
//! are this node's.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_api::{ApiError, ApiState};
use switchboard_hub::metrics::Traffic;
use switchboard_hub::{App, Hub, HubError};
use switchboard_protocol::api::PublishRequest;
use switchboard_protocol::ErrorCode;

use crate::security;

/// Users and channels listed per app, at most (the busiest first).
const LISTED: usize = 50;

#[derive(Clone)]
pub(crate) struct AdminState {
    /// The admin token, as a one-key set (compared in constant time).
    pub(crate) token: Arc<switchboard_auth::ApiKeys>,
    pub(crate) api: ApiState,
}

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin", get(console))
        .route(
            "/admin/console.js",
            get(|| async { security::asset(security::JAVASCRIPT, include_str!("assets/admin.js")) }),
        )
        .route("/admin/console.css", get(|| async { security::asset(security::CSS, include_str!("assets/admin.css")) }))
        .route("/admin/favicon.svg", get(favicon))
        .route("/admin/api/overview", get(overview))
        .route("/admin/api/apps/{app}/users/{user}", get(user).delete(disconnect))
        .route("/admin/api/apps/{app}/history/{channel}", get(history))
        .route("/admin/api/apps/{app}/publish", post(publish))
        .route("/admin/api/tail", get(tail))
        .with_state(state)
}

/// The console's page, under a policy that keeps it out of other sites' frames.
async fn console(headers: HeaderMap) -> Response {
    security::page(include_str!("assets/admin.html"), security::policy(security::Connects::SameOrigin, &headers))
}

/// The pages' icon: the console's, and with the demo also `/favicon.ico`.
const FAVICON: &str = concat!(
    r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">"##,
    r##"<rect width="32" height="32" rx="7" fill="#1f5fbf"/>"##,
    r##"<path d="M8 8 16 16 24 8M8 24 16 16 24 24" stroke="#fff" stroke-width="2.5" stroke-linecap="round"/>"##,
    r##"<circle cx="16" cy="16" r="4.5" fill="#fff"/></svg>"##,
);

pub(crate) async fn favicon() -> impl IntoResponse {
    ([(CONTENT_TYPE, "image/svg+xml"), (CACHE_CONTROL, "public, max-age=86400")], FAVICON)
}

/// A request that carried the admin token. No token and a wrong one are both 401
/// `unauthorized`, with messages the console tells apart.
struct Admin;

impl FromRequestParts<AdminState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let header = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        match switchboard_auth::bearer(header) {
            Some(given) if state.token.accepts(given) => Ok(Admin),
            Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "wrong token: it is not this server's admin token")),
            None => {
                Err(ApiError::new(ErrorCode::Unauthorized, "no admin token: send it as `Authorization: Bearer ...`"))
            }
        }
    }
}

fn app_of(state: &AdminState, slug: &str) -> Result<Arc<App>, ApiError> {
    state.api.hub.app(slug).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no app `{slug}`")))
}

/// Every app: endpoints, cluster-wide counts, this node's busiest channels and users.
async fn overview(_: Admin, State(state): State<AdminState>) -> Json<Value> {
    let hub = &state.api.hub;
    let apps: Vec<Value> = hub
        .apps()
        .iter()
        .map(|app| {
            let endpoints: Vec<Value> = app
                .spec
                .endpoints
                .iter()
                .map(|e| json!({ "name": e.name, "path": e.path, "protocol": e.protocol.as_str() }))
                .collect();
            let mut channels = app.registry.channel_counts();
            channels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let channels: Vec<Value> =
                channels.into_iter().take(LISTED).map(|(c, n)| json!({ "channel": c, "subscribers": n })).collect();
            let mut users = app.registry.user_counts();
            users.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let users: Vec<Value> = users
                .into_iter()
                .take(LISTED)
                .map(|(u, n)| {
                    let status = state.api.chat.presence.status(&app.slug, &u).unwrap_or("online");
                    json!({ "user": u, "connections": n, "presence": status })
                })
                .collect();
            json!({
                "slug": app.slug, "endpoints": endpoints, "counts": hub.connection_counts(app),
                "traffic": traffic(hub, app), "channels": channels, "users": users,
            })
        })
        .collect();
    Json(json!({ "node_id": hub.node_id(), "apps": apps }))
}

/// The app's recent traffic: cluster sums (the worst node's p99), and each node's.
fn traffic(hub: &Hub, app: &App) -> Value {
    let nodes = hub.traffic(app);
    let sum = |rate: fn(&Traffic) -> f64| nodes.iter().map(|(_, t)| rate(t)).sum::<f64>();
    let p99_ms = nodes.iter().filter_map(|(_, t)| t.p99_ms).reduce(f64::max);
    let per_node: Vec<Value> = nodes.iter().map(|(node, t)| json!({ "node_id": node, "traffic": t })).collect();
    json!({
        "published_per_sec": sum(|t| t.published_per_sec),
        "received_per_sec": sum(|t| t.received_per_sec),
        "delivered_per_sec": sum(|t| t.delivered_per_sec),
        "overflows": nodes.iter().map(|(_, t)| t.overflows).sum::<u64>(),
        "p99_ms": p99_ms,
        "nodes": per_node,
    })
}

/// A user's devices on every node, with their metadata.
async fn user(
    _: Admin,
    State(state): State<AdminState>,
    Path((app, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let app = app_of(&state, &app)?;
    let connections = state.api.hub.cluster_connections(&app, &user).await;
    let presence = state.api.chat.presence.status(&app.slug, &user).unwrap_or("offline");
    Ok(Json(json!({ "user": user, "presence": presence, "connections": connections })))
}

async fn disconnect(
    _: Admin,
    State(state): State<AdminState>,
    Path((app, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let app = app_of(&state, &app)?;
    let disconnected = state.api.hub.disconnect_user(&app, &user).await;
    tracing::info!(app = %app.slug, user, disconnected, "admin console disconnected a user");
    Ok(Json(json!({ "user": user, "disconnected": disconnected })))
}

/// A channel's newest events (up to 20).
async fn history(
    _: Admin,
    State(state): State<AdminState>,
    Path((app, channel)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let app = app_of(&state, &app)?;
    let hub = &state.api.hub;
    let latest = hub.history(&app, &channel, 0, None, 1).await?.latest;
    let page = hub.history(&app, &channel, latest.saturating_sub(20), None, 20).await?;
    Ok(Json(serde_json::to_value(page).map_err(|e| HubError::Internal(e.to_string()))?))
}

async fn publish(
    _: Admin,
    State(state): State<AdminState>,
    Path(app): Path<String>,
    Json(request): Json<PublishRequest>,
) -> Result<Json<Value>, ApiError> {
    let app = app_of(&state, &app)?;
    let answer = state.api.hub.publish(&app, request).await?;
    Ok(Json(serde_json::to_value(answer).map_err(|e| HubError::Internal(e.to_string()))?))
}

#[derive(Deserialize)]
struct TailFilter {
    app: Option<String>,
    channel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Server-sent events: every event published through this node that passes the filter.
async fn tail(
    _: Admin,
    State(state): State<AdminState>,
    Query(filter): Query<TailFilter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watcher = state.api.hub.watch();
    let events = futures_util::stream::unfold((watcher, filter), |(mut watcher, filter)| async move {
        loop {
            let envelope = match watcher.recv().await {
                Ok(envelope) => envelope,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(note), (watcher, filter)));
                }
                Err(_) => return None,
            };
            let frame: Value = serde_json::from_slice(&envelope.payload).unwrap_or(Value::Null);
            let wanted = filter.app.as_deref().is_none_or(|a| a == &*envelope.app)
                && filter.channel.as_deref().is_none_or(|c| c == &*envelope.channel)
                && filter.kind.as_deref().is_none_or(|k| frame["type"] == k);
            if wanted {
                let text = String::from_utf8_lossy(&envelope.payload).into_owned();
                return Some((Ok(Event::default().data(text)), (watcher, filter)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
