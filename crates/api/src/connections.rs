//! Live connections: counts, a user's devices, one event to one device, and disconnecting a
//! user everywhere.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_hub::{Hub, HubError};

use crate::{ApiError, ApiState, AppAccess, JsonBody};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/apps/{app}/connections", get(counts))
        .route("/api/v1/apps/{app}/users/{user}/connections", get(list).delete(disconnect))
        .route("/api/v1/apps/{app}/connections/{connection}/events", post(send))
}

#[derive(serde::Deserialize)]
struct ConnectionPath {
    connection: String,
}

/// One event for one connection.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(serde::Deserialize)]
struct UserPath {
    user: String,
}

async fn counts(State(hub): State<Hub>, AppAccess(app): AppAccess) -> Result<Json<Value>, ApiError> {
    Ok(Json(hub.connection_counts(&app)))
}

async fn list(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<UserPath>,
) -> Result<Json<Value>, ApiError> {
    let connections = hub.cluster_connections(&app, &p.user).await;
    // What each of the user's devices acknowledged, connected now or not.
    let mut acked = serde_json::Map::new();
    for ack in hub.store().acks(&app.spec.slug, &p.user, None).await.map_err(HubError::from)? {
        let device = acked.entry(ack.device).or_insert_with(|| json!({}));
        let at = switchboard_hub::rfc3339(ack.acked_at_ms);
        device[ack.channel] = json!({ "epoch": ack.epoch, "seq": ack.seq, "acked_at": at });
    }
    Ok(Json(json!({ "user": p.user, "connections": connections, "acked": acked })))
}

async fn disconnect(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<UserPath>,
) -> Result<Json<Value>, ApiError> {
    let disconnected = hub.disconnect_user(&app, &p.user).await;
    tracing::info!(app = %app.slug, user = %p.user, disconnected, "disconnected user");
    Ok(Json(json!({ "user": p.user, "disconnected": disconnected })))
}

async fn send(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<ConnectionPath>,
    JsonBody(event): JsonBody<DirectEvent>,
) -> Result<Json<Value>, ApiError> {
    if !hub.send_to_connection(&app, &p.connection, &event.kind, event.data).await? {
        let message = format!("connection `{}` of app `{}` is not connected", p.connection, app.slug);
        return Err(ApiError::new(switchboard_protocol::ErrorCode::NotFound, message));
    }
    Ok(Json(json!({ "connection_id": p.connection, "sent": true })))
}
