//! Which app a server API call acts for, proven by its API key.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use switchboard_hub::{App, Hub};
use switchboard_protocol::ErrorCode;

use crate::ApiError;

/// The app named in the path, after its API key checked out.
pub struct AppAccess(pub Arc<App>);

#[derive(serde::Deserialize)]
struct AppPath {
    app: String,
}

impl<S: Send + Sync> FromRequestParts<S> for AppAccess
where
    Hub: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let hub = Hub::from_ref(state);
        let slug = app_slug(parts, state).await?;
        let (app, key) = (hub.app(&slug), bearer(parts));
        match (app, key) {
            (Some(app), Some(key)) if app.spec.api_keys.accepts(key) => Ok(Self(app)),
            (Some(app), key) => {
                switchboard_hub::metrics::bump(&app.metrics.api_auth_failures);
                Err(refusal(&hub, &slug, Some(&app), key))
            }
            (None, key) => Err(refusal(&hub, &slug, None, key)),
        }
    }
}

/// Why `key` does not open app `slug`.
fn refusal(hub: &Hub, slug: &str, app: Option<&App>, key: Option<&str>) -> ApiError {
    if let Some(app) = app.filter(|a| !a.spec.api_keys.is_configured()) {
        return not_configured(slug, app.spec.api_keys.source());
    }
    let Some(key) = key else {
        return ApiError::new(ErrorCode::Unauthorized, "send the app's API key as Authorization: Bearer <key>");
    };
    // Another app's key is a different mistake from a wrong key, and gets its own status.
    if hub.apps().iter().any(|a| a.spec.api_keys.accepts(key)) {
        return ApiError::new(ErrorCode::Forbidden, format!("this API key belongs to another app, not `{slug}`"));
    }
    match app {
        Some(_) => ApiError::new(ErrorCode::Unauthorized, format!("invalid API key for app `{slug}`")),
        None => ApiError::new(ErrorCode::NotFound, format!("no app `{slug}` on this server")),
    }
}

/// An app with no key at all: no key can be right, so say what the operator must set.
fn not_configured(slug: &str, source: &str) -> ApiError {
    let set = if source.is_empty() { "configure one".to_owned() } else { format!("set {source}") };
    let message = format!("app `{slug}` has no API key configured, so its server API is off; {set} and restart");
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The `{app}` of the path.
pub(crate) async fn app_slug<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    let Path(AppPath { app }) =
        Path::<AppPath>::from_request_parts(parts, state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(app)
}

/// The credential of `Authorization: Bearer <credential>`.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(switchboard_auth::bearer)
}
