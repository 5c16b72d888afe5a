//! The HTTP edge's error type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use switchboard_hub::HubError;
use switchboard_protocol::ErrorCode;

/// An error answered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    /// The machine-readable code; also decides the status.
    pub code: ErrorCode,
    /// What went wrong, for a person; names the field for bad input.
    pub message: String,
    /// Seconds the caller should wait before retrying, sent as `Retry-After`.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    /// 400 naming what is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let code = e.code();
        match e {
            HubError::BadRequest(message) | HubError::TooLarge(message) => Self::new(code, message),
            // Expected under load, and counted in /metrics: not an error worth a log line.
            HubError::Overloaded(message) => Self { code, message, retry_after: Some(HubError::RETRY_AFTER_SECS) },
            HubError::Broker(e) => {
                tracing::error!(error = %e, "publish failed in the broker");
                Self::new(code, "broker unavailable; retry (with the same idempotency_key)")
            }
            HubError::Unavailable(e) => {
                tracing::error!(error = %e, "server API request hit an unavailable dependency");
                Self::new(code, "temporarily unavailable; retry (with the same idempotency_key when publishing)")
            }
            other => {
                // Details stay in the log; the caller learns only that it may retry.
                tracing::error!(error = %other, "server API request failed");
                Self::new(code, "internal error; retry later")
            }
        }
    }
}

impl From<switchboard_inbox::InboxError> for ApiError {
    fn from(e: switchboard_inbox::InboxError) -> Self {
        match e {
            switchboard_inbox::InboxError::Hub(inner) => inner.into(),
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl From<switchboard_chat::ChatError> for ApiError {
    fn from(e: switchboard_chat::ChatError) -> Self {
        match e {
            switchboard_chat::ChatError::Hub(inner) => inner.into(),
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
