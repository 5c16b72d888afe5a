//! Presence for the app backend: users' statuses and who is on a channel.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use switchboard_hub::HubError;

use crate::body::QueryParams;
use crate::{ApiError, ApiState, AppAccess};

/// Most users one presence query may name.
const MAX_USERS: usize = 500;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/apps/{app}/presence", get(users))
        .route("/api/v1/apps/{app}/channels/{channel}/presence", get(channel))
}

#[derive(serde::Deserialize)]
struct Users {
    users: String,
}

#[derive(serde::Deserialize)]
struct ChannelPath {
    channel: String,
}

fn enabled(app: &switchboard_hub::App) -> Result<(), ApiError> {
    crate::feature(app, app.spec.features.presence, "presence")
}

async fn users(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    QueryParams(q): QueryParams<Users>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    let mut users: Vec<String> =
        q.users.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
    users.sort();
    users.dedup();
    if users.is_empty() || users.len() > MAX_USERS {
        return Err(ApiError::bad_request(format!("query `users` must name 1 to {MAX_USERS} users, comma-separated")));
    }
    Ok(Json(state.chat.presence_of(&state.hub, &app, &users).await?))
}

async fn channel(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    Path(p): Path<ChannelPath>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    switchboard_hub::policy::check_name(&app.spec, &p.channel).map_err(HubError::BadRequest)?;
    Ok(Json(state.chat.channel_presence(&app, &p.channel)))
}
