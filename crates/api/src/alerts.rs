//! Alerts: created and deleted by the app backend (`/alerts`), listed and acknowledged by
//! the members of their group (`/me/alerts...`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;
use switchboard_auth::Identity;
use switchboard_inbox::{AlertQuery, CreateAlert, Member};

use switchboard_hub::Limits;

use crate::body::{limited, QueryParams};
use crate::{ApiError, ApiState, AppAccess, UserAccess};

pub(crate) fn router() -> Router<ApiState> {
    let me = "/api/v1/apps/{app}/me/alerts";
    Router::new()
        .route("/api/v1/apps/{app}/alerts", post(create))
        .route("/api/v1/apps/{app}/alerts/{id}", delete(remove))
        .route(me, get(list))
        .route(&format!("{me}/count"), get(count))
        .route(&format!("{me}/{{id}}/acknowledge"), post(acknowledge))
}

#[derive(serde::Deserialize)]
struct IdPath {
    id: String,
}

fn enabled(app: &switchboard_hub::App) -> Result<(), ApiError> {
    crate::feature(app, app.spec.features.alerts, "alerts")
}

fn member(user: Identity) -> Member {
    Member { user: user.user_id, groups: user.groups }
}

async fn create(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    enabled(&app)?;
    let request: CreateAlert = limited(&app, &body)?;
    if let Some(data) = &request.data {
        Limits::check_value_depth("data", data).map_err(ApiError::bad_request)?;
    }
    let created = state.inbox.create_alert(&state.hub, &app, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn remove(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    Path(p): Path<IdPath>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.delete_alert(&state.hub, &app, &p.id).await?))
}

async fn list(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    QueryParams(query): QueryParams<AlertQuery>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.alerts(&state.hub, &app, &member(user), &query).await?))
}

async fn count(State(state): State<ApiState>, UserAccess(app, user): UserAccess) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.unacknowledged_count(&state.hub, &app, &member(user)).await?))
}

async fn acknowledge(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    Path(p): Path<IdPath>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.acknowledge_alert(&state.hub, &app, &member(user), &p.id).await?))
}
