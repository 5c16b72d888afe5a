//! `POST /publish` and `POST /publish/batch`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use switchboard_hub::Hub;
use switchboard_protocol::api::{BatchRequest, BatchResponse, PublishRequest, PublishResponse};

use crate::{ApiError, ApiState, AppAccess, JsonBody};

/// Most events one batch may carry.
const MAX_BATCH: usize = 100;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/apps/{app}/publish", post(publish))
        .route("/api/v1/apps/{app}/publish/batch", post(batch))
}

async fn publish(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    JsonBody(request): JsonBody<PublishRequest>,
) -> Result<Json<PublishResponse>, ApiError> {
    Ok(Json(hub.publish(&app, request).await?))
}

async fn batch(
    State(hub): State<Hub>,
    AppAccess(app): AppAccess,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("field `events` must hold 1 to {MAX_BATCH} events")));
    }
    // Check every event before publishing any, so a bad event fails the batch as a whole.
    for (i, event) in batch.events.iter().enumerate() {
        hub.check_publish(&app, event).map_err(|e| ApiError::bad_request(format!("events[{i}]: {e}")))?;
    }
    Ok(Json(BatchResponse { results: hub.publish_batch(&app, batch.events).await? }))
}
