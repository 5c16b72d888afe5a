//! Notifications: created by the app backend (`POST /notifications`), read and cleared by
//! their user (`/me/notifications...`). Every change is pushed to the user's devices.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;
use switchboard_inbox::{CreateNotification, NotificationQuery};

use switchboard_hub::Limits;

use crate::body::{limited, QueryParams};
use crate::{ApiError, ApiState, AppAccess, UserAccess};

pub(crate) fn router() -> Router<ApiState> {
    let me = "/api/v1/apps/{app}/me/notifications";
    Router::new()
        .route("/api/v1/apps/{app}/notifications", post(create))
        .route(me, get(list))
        .route(&format!("{me}/count"), get(count))
        .route(&format!("{me}/read-all"), post(read_all))
        .route(&format!("{me}/{{id}}/read"), post(read))
        .route(&format!("{me}/{{id}}"), delete(remove))
}

#[derive(serde::Deserialize)]
struct IdPath {
    id: String,
}

fn enabled(app: &switchboard_hub::App) -> Result<(), ApiError> {
    crate::feature(app, app.spec.features.notifications, "notifications")
}

async fn create(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    enabled(&app)?;
    let request: CreateNotification = limited(&app, &body)?;
    if let Some(data) = &request.data {
        Limits::check_value_depth("data", data).map_err(ApiError::bad_request)?;
    }
    let created = state.inbox.create_notification(&state.hub, &app, request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    QueryParams(query): QueryParams<NotificationQuery>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.notifications(&state.hub, &app, &user.user_id, &query).await?))
}

async fn count(State(state): State<ApiState>, UserAccess(app, user): UserAccess) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.unread_count(&state.hub, &app, &user.user_id).await?))
}

async fn read(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    Path(p): Path<IdPath>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.read_notification(&state.hub, &app, &user.user_id, &p.id).await?))
}

async fn read_all(State(state): State<ApiState>, UserAccess(app, user): UserAccess) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.read_all(&state.hub, &app, &user.user_id).await?))
}

async fn remove(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    Path(p): Path<IdPath>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.inbox.delete_notification(&state.hub, &app, &user.user_id, &p.id).await?))
}
