//! CORS for the client API (`/api/v1/apps/{app}/me/...`), so that a front end served from its
//! own origin can load a user's inbox and conversations with the user's token. The server API
//! sends no CORS headers: browsers never hold an API key.
//!
//! Which origins: those the app's endpoints list in `allowed_origins` (compared without regard
//! to case, as the socket upgrade does); when no endpoint lists any, every origin, as for the
//! sockets. No credentials are allowed: the token travels in `Authorization`, never a cookie.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_hub::{App, Hub};
use switchboard_protocol::ErrorCode;

use crate::ApiError;

/// What a preflight may ask for.
const METHODS: &str = "GET, POST, PUT, DELETE";
const HEADERS: &str = "authorization, content-type";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The middleware: answers preflights to the client API and marks its answers for the origin.
/// Other paths pass through untouched.
pub async fn client_api(State(hub): State<Hub>, request: Request, next: Next) -> Response {
    let Some(app) = client_api_app(&hub, request.uri().path()) else { return next.run(request).await };
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin.as_ref().and_then(|o| allowed(&app, o));
    if request.method() == Method::OPTIONS && origin.is_some() {
        return preflight(origin.as_ref(), allowed);
    }
    let mut response = next.run(request).await;
    vary_on_origin(response.headers_mut());
    if let Some(allowed) = allowed {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    }
    response
}

/// The app of a `/api/v1/apps/{app}/me` path.
fn client_api_app(hub: &Hub, path: &str) -> Option<std::sync::Arc<App>> {
    let rest = path.strip_prefix("/api/v1/apps/")?;
    let (slug, rest) = rest.split_once('/')?;
    (rest == "me" || rest.starts_with("me/")).then(|| hub.app(slug)).flatten()
}

/// The `Access-Control-Allow-Origin` value for `origin`, if the app allows it.
fn allowed(app: &App, origin: &HeaderValue) -> Option<HeaderValue> {
    let text = origin.to_str().ok()?;
    let mut lists = app.spec.endpoints.iter().filter_map(|e| e.allowed_origins.as_ref()).peekable();
    if lists.peek().is_none() {
        return Some(HeaderValue::from_static("*"));
    }
    let listed = lists.flatten().any(|a| a == "*" || a.eq_ignore_ascii_case(text));
    listed.then(|| origin.clone())
}

fn preflight(origin: Option<&HeaderValue>, allowed: Option<HeaderValue>) -> Response {
    let Some(allowed) = allowed else {
        let shown = origin.and_then(|o| o.to_str().ok()).unwrap_or("(none)");
        let message = format!("origin {shown} is not in this app's allowed_origins");
        let mut response = ApiError::new(ErrorCode::Forbidden, message).into_response();
        vary_on_origin(response.headers_mut());
        return response;
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(HEADERS));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    vary_on_origin(headers);
    response
}

/// Caches must not serve one origin's answer to another.
fn vary_on_origin(headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}
