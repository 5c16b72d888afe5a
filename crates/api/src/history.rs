//! `GET /channels/{channel}/history?since=&epoch=&limit=`: what a client missed, for the
//! app backend or a client that could not resume.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use switchboard_hub::{Hub, MAX_HISTORY_LIMIT};
use switchboard_protocol::api::HistoryResponse;

use crate::{ApiError, ApiState, AppAccess};

/// Events returned when the request names no `limit`.
const DEFAULT_LIMIT: u32 = 100;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/apps/{app}/channels/{channel}/history", get(history))
}

#[derive(serde::Deserialize)]
struct ChannelPath {
    channel: String,
}

async fn history(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    Path(p): Path<ChannelPath>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let number = |name: &str, default: u64| -> Result<u64, ApiError> {
        query.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| ApiError::bad_request(format!("query `{name}` must be a whole number, not `{v}`")))
        })
    };
    let since = number("since", 0)?;
    let limit = number("limit", u64::from(DEFAULT_LIMIT))?;
    let limit = u32::try_from(limit).unwrap_or(MAX_HISTORY_LIMIT + 1);
    let epoch = query.get("epoch").map(String::as_str).filter(|e| !e.is_empty());
    Ok(Json(hub.history(&app, &p.channel, since, epoch, limit).await?))
}
