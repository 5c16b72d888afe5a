//! Chat over HTTP: the backend creates conversations (`POST /conversations`); front ends
//! load conversations, messages, search results and unread counts (`/me/...`). Everything
//! live happens over the socket.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use switchboard_chat::{CreateConversation, MessagePage};

use crate::body::QueryParams;
use crate::{ApiError, ApiState, AppAccess, JsonBody, UserAccess};

pub(crate) fn router() -> Router<ApiState> {
    let me = "/api/v1/apps/{app}/me";
    Router::new()
        .route("/api/v1/apps/{app}/conversations", post(create))
        .route(&format!("{me}/conversations"), get(conversations))
        .route(&format!("{me}/conversations/{{id}}/messages"), get(messages))
        .route(&format!("{me}/chat/search"), get(search))
        .route(&format!("{me}/chat/unread"), get(unread))
}

#[derive(serde::Deserialize)]
struct IdPath {
    id: String,
}

#[derive(serde::Deserialize)]
struct Search {
    q: String,
    #[serde(default)]
    limit: Option<u32>,
}

fn enabled(app: &switchboard_hub::App) -> Result<(), ApiError> {
    crate::feature(app, app.spec.features.chat, "chat")
}

/// 201 with a new conversation; 200 with the existing direct conversation of the pair.
async fn create(
    State(state): State<ApiState>,
    AppAccess(app): AppAccess,
    JsonBody(request): JsonBody<CreateConversation>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    enabled(&app)?;
    let creator = request.created_by.clone().ok_or_else(|| ApiError::bad_request("missing field `created_by`"))?;
    let answer = state.chat.create_conversation(&state.hub, &app, &creator, request).await?;
    let status = if answer["created"] == true { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(answer)))
}

async fn conversations(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.chat.conversations(&state.hub, &app, &user.user_id).await?))
}

async fn messages(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    Path(p): Path<IdPath>,
    QueryParams(page): QueryParams<MessagePage>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.chat.messages(&state.hub, &app, &user.user_id, &p.id, &page).await?))
}

async fn search(
    State(state): State<ApiState>,
    UserAccess(app, user): UserAccess,
    QueryParams(q): QueryParams<Search>,
) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.chat.search(&state.hub, &app, &user.user_id, &q.q, q.limit).await?))
}

async fn unread(State(state): State<ApiState>, UserAccess(app, user): UserAccess) -> Result<Json<Value>, ApiError> {
    enabled(&app)?;
    Ok(Json(state.chat.unread(&state.hub, &app, &user.user_id).await?))
}
