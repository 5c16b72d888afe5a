//! Socket.IO v5 on Engine.IO: packets, the bridge to hub sessions, and the diagnostic
//! conformance mode.

mod bridge;
mod diagnostic;
mod event;
pub(crate) mod packet;
mod reader;
mod translate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use switchboard_hub::{Hub, Protocol};
use switchboard_transport::websocket::Upgrade;

use crate::engine::socket::Timing;
use crate::engine::{Engine, EngineQuery, EngineSettings, OnSession};

/// Engine.IO's defaults: ping every 25 s, 20 s to answer, 1 MB per message.
const DEFAULT_TIMING: Timing = Timing {
    ping_interval: Duration::from_secs(25),
    ping_timeout: Duration::from_secs(20),
    max_payload: 1_000_000,
    max_queue: 1 << 20,
};

/// Routes for every Socket.IO endpoint (and diagnostic endpoint) of every app.
pub fn router(hub: &Hub) -> Router {
    let mut router = Router::new();
    for app in hub.apps() {
        for spec in &app.spec.endpoints {
            let (timing, on_session): (Timing, OnSession) = match spec.protocol {
                Protocol::SocketIo => {
                    let endpoint =
                        Arc::new(bridge::Endpoint { hub: hub.clone(), app: app.clone(), spec: spec.clone() });
                    let max_queue = app.spec.limits.outbox_max_bytes;
                    let timing = Timing { ping_interval: spec.ping_interval, max_queue, ..DEFAULT_TIMING };
                    let tasks = hub.sessions().clone();
                    let on_session: OnSession = Arc::new(move |socket, received, opening| {
                        tasks.spawn(bridge::run(endpoint.clone(), socket, received, opening));
                    });
                    (timing, on_session)
                }
                Protocol::SocketIoConformance => (diagnostic::TIMING, Arc::new(diagnostic::socket_io)),
                Protocol::EngineIoEcho => (diagnostic::TIMING, Arc::new(diagnostic::engine_echo)),
                _ => continue,
            };
            let settings = EngineSettings {
                timing,
                allowed_origins: spec.allowed_origins.clone(),
                compression: spec.compression,
                control: switchboard_transport::control_limit(&app.spec.limits),
                tasks: hub.sessions().clone(),
                // Diagnostic sessions never authenticate; only real ones wait in the room.
                gate: (spec.protocol == Protocol::SocketIo).then(|| hub.gate().clone()),
                shutdown: hub.shutdown_token(),
            };
            let engine = Engine::new(settings, on_session);
            let hub = hub.clone();
            let handler = move |ConnectInfo(addr): ConnectInfo<SocketAddr>, request: Request| {
                let (engine, hub) = (engine.clone(), hub.clone());
                async move {
                    if hub.shutdown_token().is_cancelled() {
                        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down").into_response();
                    }
                    let (mut parts, body) = request.into_parts();
                    let ws = Upgrade::from_request_parts(&mut parts, &()).await.ok();
                    let Ok(Query(query)) = Query::<EngineQuery>::try_from_uri(&parts.uri) else {
                        return (StatusCode::BAD_REQUEST, "bad query string").into_response();
                    };
                    // The body is read only for a POST to a live session (engine/polling.rs).
                    engine.handle(parts.method, query, parts.headers, ws, addr.to_string(), body).await
                }
            };
            // Exactly the declared path: socket.io-client asks for `/socket.io/` (with the slash).
            router = router.route(&spec.path, any(handler));
        }
    }
    router
}
