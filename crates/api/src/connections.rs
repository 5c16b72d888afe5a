//! Live connections: counts, a user's devices, one event to one device, and disconnecting a
//! user everywhere.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_hub::{App, Hub, HubError, Limits};
use switchboard_protocol::ErrorCode;

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
    Limits::check_value_depth("data", &event.data).map_err(ApiError::bad_request)?;
    fits(&app, &event)?;
    if !hub.send_to_connection(&app, &p.connection, &event.kind, event.data).await? {
        let message = format!("connection `{}` of app `{}` is not connected", p.connection, app.slug);
        return Err(ApiError::new(ErrorCode::NotFound, message));
    }
    Ok(Json(json!({ "connection_id": p.connection, "sent": true })))
}

/// Refuses an event larger than the connection's queue could ever hold (it would be closed
/// with 4008 instead of receiving it).
fn fits(app: &App, event: &DirectEvent) -> Result<(), ApiError> {
    let limit = app.spec.limits.outbox_max_bytes;
    /// The frame the connection receives, borrowed.
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a Value,
    }
    let mut size = ByteCount(0);
    // Serializing a Value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut size, &Frame { kind: &event.kind, data: &event.data });
    if size.0 <= limit {
        return Ok(());
    }
    let message = format!(
        "the event is {} bytes; app `{}` queues at most {limit} bytes for a connection (limits.outbox_max_bytes)",
        size.0, app.slug
    );
    Err(ApiError::new(ErrorCode::PayloadTooLarge, message))
}

/// Counts what is written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
