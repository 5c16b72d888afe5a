//! Operations: liveness, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use switchboard_hub::Hub;

use crate::ApiState;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], crate::OPENAPI) }))
}

/// Fails as soon as shutdown begins, and while the node is cut off from its broker or its
/// store, so that load balancers send new clients elsewhere.
async fn readyz(State(hub): State<Hub>) -> impl IntoResponse {
    let problems = hub.readiness_problems();
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else if !hub.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining", "problems": problems })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unready", "problems": problems })))
    }
}
