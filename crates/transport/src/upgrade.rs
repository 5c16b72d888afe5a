//! The HTTP side of connecting: one route per endpoint, origin checks and token discovery.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_hub::{App, ClientAddr, EndpointSpec, Gate, Handshake, Hub, Protocol};

use crate::websocket::{ControlLimit, Settings, Upgrade};

/// Everything a connection to one endpoint needs.
struct Endpoint {
    hub: Hub,
    app: Arc<App>,
    spec: Arc<EndpointSpec>,
    socket: Settings,
}

/// Routes for every native and echo endpoint of every app.
pub fn router(hub: &Hub) -> Router {
    let mut router = Router::new();
    for app in hub.apps() {
        for spec in &app.spec.endpoints {
            if !matches!(spec.protocol, Protocol::Native | Protocol::Echo) {
                continue; // Socket.IO endpoints are served by switchboard-socketio
            }
            // The transport's hard cap is above the manifest's limit so that the session sees
            // an oversized message and closes with 1009 and a reason, not a bare protocol error.
            let hard_cap = app.spec.limits.max_message_bytes.saturating_mul(2).max(1 << 16);
            let socket = Settings::new(hard_cap, spec.compression.as_ref(), control_limit(&app.spec.limits));
            let endpoint = Arc::new(Endpoint { hub: hub.clone(), app: app.clone(), spec: spec.clone(), socket });
            let handler = move |ws: Result<Upgrade, StatusCode>,
                                headers: HeaderMap,
                                query: Query<ConnectQuery>,
                                addr: ConnectInfo<SocketAddr>| {
                connect(endpoint.clone(), ws, headers, query, addr)
            };
            router = router.route(&spec.path, get(handler));
        }
    }
    router
}

/// Control frames are held to the app's message rate and burst.
pub fn control_limit(limits: &switchboard_hub::Limits) -> ControlLimit {
    ControlLimit { per_second: limits.messages_per_second, burst: limits.burst }
}

#[derive(serde::Deserialize)]
struct ConnectQuery {
    token: Option<String>,
    /// Names this device, for `ack` and for resuming from acknowledged positions.
    device: Option<String>,
    /// `?resume=1`: the client will send `resume` first; hold live events until then.
    resume: Option<String>,
}

async fn connect(
    endpoint: Arc<Endpoint>,
    ws: Result<Upgrade, StatusCode>,
    headers: HeaderMap,
    Query(query): Query<ConnectQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if endpoint.hub.shutdown_token().is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "server is shutting down; connect to another node",
        );
    }
    let Ok(ws) = ws else {
        let message = "this is a WebSocket endpoint: connect with a WebSocket client (Upgrade: websocket, \
                       Sec-WebSocket-Version: 13)";
        return refuse(StatusCode::BAD_REQUEST, "bad_request", message);
    };
    let token = find_token(&endpoint.app, &headers, query.token.clone());
    let cookie_auth = token.as_ref().is_some_and(|t| t.from_cookie);
    let addr = client_addr(endpoint.hub.gate(), peer, &headers);
    if let Err(message) = check_origin(&endpoint, &headers, cookie_auth) {
        tracing::warn!(%addr, path = %endpoint.spec.path, "refused cross-origin upgrade");
        return refuse(StatusCode::FORBIDDEN, "forbidden", &message);
    }
    let handshake = Handshake {
        token: token.map(|t| t.value),
        remote_addr: addr.to_string(),
        device: query.device.filter(|d| !d.is_empty()),
        resume: query.resume.is_some_and(|r| !matches!(r.as_str(), "0" | "false" | "no")),
    };
    // A connection that will wait for its `auth` frame holds a place in the waiting room
    // until then. One that came with a token is verified at once, so a full room (of others
    // waiting) never keeps it out.
    let waiter = match handshake.token {
        Some(_) => None,
        None => match endpoint.hub.gate().enter(addr.ip) {
            Ok(waiter) => Some(waiter),
            Err(full) => {
                tracing::warn!(%addr, path = %endpoint.spec.path, "refused: {full}");
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &full.to_string());
            }
        },
    };
    let tracker = endpoint.hub.sessions().clone();
    let (response, pending) = endpoint.socket.accept(ws);
    tokio::spawn(tracker.track_future(async move {
        let Some(socket) = pending.socket().await else { return };
        match endpoint.spec.protocol {
            Protocol::Echo => {
                drop(waiter); // the diagnostic echo never authenticates
                crate::echo::serve(socket).await
            }
            _ => {
                let (hub, app, spec) = (endpoint.hub.clone(), endpoint.app.clone(), endpoint.spec.clone());
                // `serve` returns once the session is live or refused: the place is given back.
                crate::native::serve(hub, app, spec, handshake, socket).await;
                drop(waiter);
            }
        }
    }));
    response
}

/// Where a request comes from: `peer`, or the client a trusted proxy names in the request's
/// `X-Forwarded-For` or `Forwarded` header (the gate knows the trusted proxies; see
/// [`switchboard_hub::TrustedProxies`]). Every transport asks this one function, so the
/// waiting room's per-address cap, the connection's log lines and its `remote_addr` agree.
pub fn client_addr(gate: &Gate, peer: SocketAddr, headers: &HeaderMap) -> ClientAddr {
    let lines = |name| headers.get_all(name).into_iter().map(HeaderValue::as_bytes);
    gate.trusted_proxies().client(peer, lines("x-forwarded-for"), lines(header::FORWARDED.as_str()))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Allowlisted origins only. Without a list, any origin may connect, except when the token
/// rides in the app's cookie: then only same-host pages may, since a browser attaches
/// cookies to cross-site WebSocket requests too (cross-site WebSocket hijacking).
fn check_origin(endpoint: &Endpoint, headers: &HeaderMap, cookie_auth: bool) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(()); // Not a browser: origin checks protect browsers only.
    };
    match &endpoint.spec.allowed_origins {
        Some(allowed) if allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) => Ok(()),
        Some(_) => Err(format!("origin {origin} is not in this endpoint's allowed_origins")),
        None if !cookie_auth => Ok(()),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            if origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err(format!("origin {origin} may not use cookie auth here; list it in allowed_origins"))
            }
        }
    }
}

/// Where a token was found.
struct Token {
    value: String,
    from_cookie: bool,
}

/// The token, in DESIGN order: Authorization header, `?token=`, then the manifest's cookie.
fn find_token(app: &App, headers: &HeaderMap, query: Option<String>) -> Option<Token> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(switchboard_auth::bearer);
    if let Some(value) = bearer.map(str::to_owned).or(query.filter(|t| !t.is_empty())) {
        return Some(Token { value, from_cookie: false });
    }
    let name = app.spec.cookie.as_deref()?;
    let value = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
    })?;
    Some(Token { value, from_cookie: true })
}
