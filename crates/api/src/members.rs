//! Server-managed channel membership, applied at once to the user's live connections.

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchboard_hub::Hub;
use switchboard_protocol::check_user_id;

use crate::{ApiError, ApiState, AppAccess};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/apps/{app}/channels/{channel}/members", get(list))
        .route("/api/v1/apps/{app}/channels/{channel}/members/{user}", put(add).delete(remove))
}

#[derive(serde::Deserialize)]
struct ChannelPath {
    channel: String,
}

#[derive(serde::Deserialize)]
struct MemberPath {
    channel: String,
    user: String,
}

impl MemberPath {
    /// Refuses a user id the rest of the API refuses (a NUL, 10 KB), before it is stored.
    fn checked(self) -> Result<Self, ApiError> {
        check_user_id(&self.user).map_err(|e| ApiError::bad_request(format!("path `{{user}}`: {e}")))?;
        Ok(self)
    }
}

async fn list(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<ChannelPath>,
) -> Result<Json<Value>, ApiError> {
    let members = hub.members(&app, &p.channel).await?;
    Ok(Json(json!({ "channel": p.channel, "members": members })))
}

async fn add(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<MemberPath>,
) -> Result<Json<Value>, ApiError> {
    let p = p.checked()?;
    let added = hub.add_member(&app, &p.channel, &p.user).await?;
    Ok(Json(json!({ "channel": p.channel, "user": p.user, "added": added })))
}

async fn remove(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<MemberPath>,
) -> Result<Json<Value>, ApiError> {
    let p = p.checked()?;
    let removed = hub.remove_member(&app, &p.channel, &p.user).await?;
    Ok(Json(json!({ "channel": p.channel, "user": p.user, "removed": removed })))
}
