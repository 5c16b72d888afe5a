//! Which user a client API call (`/api/v1/apps/{app}/me/...`) acts for, proven by the
//! user's own token: the same JWT the socket takes, in `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use switchboard_auth::Identity;
use switchboard_hub::{App, Hub};
use switchboard_protocol::ErrorCode;

use crate::access::{app_slug, bearer};
use crate::ApiError;

/// The app named in the path and the user whose token checked out.
pub struct UserAccess(pub Arc<App>, pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for UserAccess
where
    Hub: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let slug = app_slug(parts, state).await?;
        let app = Hub::from_ref(state)
            .app(&slug)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no app `{slug}` on this server")))?;
        match identity_of(&app, parts).await {
            Ok(identity) => Ok(Self(app, identity)),
            Err(refusal) => {
                switchboard_hub::metrics::bump(&app.metrics.api_auth_failures);
                Err(refusal)
            }
        }
    }
}

/// The user the request's token names.
async fn identity_of(app: &App, parts: &Parts) -> Result<Identity, ApiError> {
    let token = bearer(parts).ok_or_else(|| {
        ApiError::new(ErrorCode::Unauthorized, "send the user's token as Authorization: Bearer <jwt>")
    })?;
    let Some(verifier) = &app.spec.verifier else {
        let message = format!("app `{}` has no JWT key configured, so it accepts no user tokens", app.slug);
        return Err(ApiError::new(ErrorCode::Unauthorized, message));
    };
    verifier.verify(token).await.map_err(|e| ApiError::new(ErrorCode::Unauthorized, format!("invalid token: {e}")))
}
