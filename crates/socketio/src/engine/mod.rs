//! Engine.IO v4 over axum: the handshake, HTTP long-polling, WebSocket (direct or upgraded
//! from polling with the probe), heartbeats and the protocol's HTTP errors.

pub(crate) mod packet;
mod polling;
pub(crate) mod socket;
mod ws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_hub::{ClientAddr, CompressionSpec, Gate, GateFull};
use switchboard_transport::websocket::{ControlLimit, Settings, Upgrade};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use packet::Packet;
use socket::{End, EngineSocket, Timing, Transport};

/// What a new session is handed to: the Socket.IO layer, or the raw echo.
pub(crate) type OnSession = Arc<dyn Fn(Arc<EngineSocket>, mpsc::Receiver<Packet>, Opening) + Send + Sync>;

/// How long a closed session stays findable for the poll that tells the client so.
const CLOSED_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the request that opened a session said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opening {
    /// `?token=` or `Authorization: Bearer`.
    pub(crate) token: Option<String>,
    /// The client's address, as shown: the peer's, or the one a trusted proxy forwarded.
    pub(crate) remote_addr: String,
    /// The client's IP, which the waiting room counts by; `None` when the peer is unknown.
    pub(crate) ip: Option<std::net::IpAddr>,
    /// `?device=`.
    pub(crate) device: Option<String>,
    /// Whether events may carry the recovery offset as an extra last argument without
    /// breaking the client: every client but python-engineio's (see [`offsets_welcome`]).
    pub(crate) offsets: bool,
}

/// The sessions of one endpoint.
pub(crate) struct Engine {
    sessions: Mutex<HashMap<String, Arc<EngineSocket>>>,
    timing: Timing,
    on_session: OnSession,
    /// Origins allowed from a browser; `None`: any.
    allowed_origins: Option<Vec<String>>,
    /// The WebSocket transport's limits and compression.
    socket: Settings,
    /// Where every task of a session runs, so that shutdown waits for them.
    tasks: TaskTracker,
    /// The waiting room sessions stay in until they authenticate; `None` for diagnostics.
    gate: Option<Arc<Gate>>,
    /// The hub's shutdown: sessions without a hub session end at once (the others close with
    /// their hub session, after its queue drained).
    shutdown: CancellationToken,
}

/// How an endpoint's Engine.IO sessions are set up.
pub(crate) struct EngineSettings {
    pub(crate) timing: Timing,
    pub(crate) allowed_origins: Option<Vec<String>>,
    pub(crate) compression: Option<CompressionSpec>,
    pub(crate) control: ControlLimit,
    pub(crate) tasks: TaskTracker,
    pub(crate) gate: Option<Arc<Gate>>,
    pub(crate) shutdown: CancellationToken,
}

/// The query every Engine.IO request carries.
#[derive(Debug, Deserialize)]
pub(crate) struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
    token: Option<String>,
    device: Option<String>,
    /// The client's cache-busting timestamp.
    t: Option<String>,
}

/// The protocol's error codes, answered with HTTP 400.
pub(crate) enum EngineError {
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    UnsupportedVersion = 5,
}

impl EngineError {
    pub(crate) fn response(self, message: &str) -> Response {
        let body = serde_json::json!({ "code": self as u8, "message": message });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

impl Engine {
    pub(crate) fn new(settings: EngineSettings, on_session: OnSession) -> Arc<Self> {
        let EngineSettings { timing, allowed_origins, compression, control, tasks, gate, shutdown } = settings;
        let socket = Settings::new(timing.max_payload, compression.as_ref(), control);
        let sessions = Mutex::new(HashMap::new());
        Arc::new(Self { sessions, timing, on_session, allowed_origins, socket, tasks, gate, shutdown })
    }

    /// A live session; one the server ended is gone at once (what it still held is not sent),
    /// while one the client closed stays for the poll that tells it so.
    fn session(&self, sid: &str) -> Option<Arc<EngineSocket>> {
        let socket = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(sid).cloned()?;
        let live = !socket.timed_out() && matches!(socket.ended(), None | Some(End::ByClient));
        live.then_some(socket)
    }

    /// Opens a session (if the waiting room has a place for it) and forgets it when it closes.
    fn open(self: &Arc<Self>, transport: Transport, opening: Opening) -> Result<Arc<EngineSocket>, GateFull> {
        let room = match (&self.gate, opening.ip) {
            (Some(gate), Some(ip)) => {
                let waiter = gate.enter(ip).inspect_err(|full| {
                    tracing::warn!(addr = %opening.remote_addr, "refused an Engine.IO session: {full}");
                })?;
                Some((socket::Room { gate: gate.clone(), address: ip }, waiter))
            }
            _ => None,
        };
        let (socket, received) = EngineSocket::new(transport, self.timing, room);
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(socket.sid.clone(), socket.clone());
        let (engine, closing) = (self.clone(), socket.clone());
        self.tasks.spawn(async move {
            tokio::select! {
                _ = closing.closed().cancelled() => {}
                _ = engine.shutdown.cancelled() => {
                    if !closing.is_attached() {
                        closing.close();
                    }
                    closing.closed().cancelled().await;
                }
            }
            closing.linger_for_poll(CLOSED_LINGER).await;
            engine.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&closing.sid);
        });
        self.tasks.spawn(socket.clone().heartbeat());
        (self.on_session)(socket.clone(), received, opening);
        Ok(socket)
    }

    /// Every request to the endpoint's path.
    pub(crate) async fn handle(
        self: Arc<Self>,
        method: Method,
        query: EngineQuery,
        headers: HeaderMap,
        ws: Option<Upgrade>,
        remote_addr: String,
        body: Body,
    ) -> Response {
        // The client behind a trusted proxy; diagnostic endpoints (no gate) show the peer.
        let client = remote_addr.parse().ok().map(|peer| match &self.gate {
            Some(gate) => switchboard_transport::client_addr(gate, peer, &headers),
            None => ClientAddr::direct(peer),
        });
        let remote_addr = client.map_or(remote_addr, |client| client.to_string());
        let cors = match self.cors(&headers) {
            Ok(cors) => cors,
            Err(origin) => {
                tracing::warn!(%remote_addr, %origin, "refused a cross-origin Engine.IO request");
                let message = format!("origin {origin} is not in this endpoint's allowed_origins");
                return (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "code": 3, "message": message })))
                    .into_response();
            }
        };
        if method == Method::OPTIONS {
            return with_cors(StatusCode::NO_CONTENT.into_response(), cors);
        }
        if query.eio.as_deref() != Some("4") {
            return with_cors(EngineError::UnsupportedVersion.response("Unsupported protocol version"), cors);
        }
        let opening = Opening {
            token: query.token.clone().or_else(|| bearer(&headers)),
            remote_addr,
            ip: client.map(|client| client.ip),
            device: query.device.clone(),
            offsets: offsets_welcome(query.t.as_deref()),
        };
        let response = match (query.transport.as_deref(), &query.sid) {
            (Some("websocket"), sid) => match ws {
                Some(ws) => self.websocket(ws, sid.as_deref(), opening),
                None => EngineError::BadRequest.response("Bad request: expected a WebSocket upgrade"),
            },
            (Some("polling"), None) if method == Method::GET => self.handshake(opening),
            (Some("polling"), None) => EngineError::BadHandshakeMethod.response("Bad handshake method"),
            (Some("polling"), Some(sid)) => match self.session(sid) {
                None => EngineError::UnknownSid.response("Session ID unknown"),
                // After an upgrade the session belongs to its WebSocket.
                Some(socket) if socket.transport() == Transport::WebSocket => {
                    EngineError::BadRequest.response("Bad request: this session moved to WebSocket")
                }
                Some(socket) if method == Method::GET => polling::poll(socket).await,
                Some(socket) if method == Method::POST => polling::post(socket, body).await,
                Some(_) => EngineError::BadRequest.response("Bad request: use GET or POST"),
            },
            _ => EngineError::UnknownTransport.response("Transport unknown"),
        };
        with_cors(response, cors)
    }

    fn handshake(self: &Arc<Self>, opening: Opening) -> Response {
        match self.open(Transport::Polling, opening) {
            Ok(socket) => text(socket.open_packet(true).encode()),
            Err(full) => waiting_room_full(full),
        }
    }

    fn websocket(self: &Arc<Self>, ws: Upgrade, sid: Option<&str>, opening: Opening) -> Response {
        let session = match sid {
            None => self.open(Transport::WebSocket, opening),
            Some(sid) => match self.session(sid) {
                // One WebSocket may take a polling session over, once.
                Some(socket) if socket.begin_upgrade() => Ok(socket),
                // Another one is let in, then closed: the session stays with the first.
                Some(_) => return self.refuse_socket(ws, "this session is already upgraded or upgrading"),
                None => return EngineError::UnknownSid.response("Session ID unknown"),
            },
        };
        let session = match session {
            Ok(session) => session,
            Err(full) => return waiting_room_full(full),
        };
        let (response, pending) = self.socket.accept(ws);
        let upgrading = sid.is_some();
        self.tasks.spawn(async move {
            let Some(socket) = pending.socket().await else {
                return if upgrading { session.upgrade_abandoned() } else { session.close() };
            };
            match upgrading {
                true => ws::upgrade(session, socket).await,
                false => ws::direct(session, socket).await,
            }
        });
        response
    }

    /// Accepts a WebSocket only to close it with 1008 and `reason`.
    fn refuse_socket(&self, ws: Upgrade, reason: &'static str) -> Response {
        let (response, pending) = self.socket.accept(ws);
        self.tasks.spawn(async move {
            if let Some(socket) = pending.socket().await {
                ws::refuse(socket, reason).await;
            }
        });
        response
    }

    /// The `Access-Control-Allow-Origin` for a browser's request (`Ok(None)` when it sent no
    /// `Origin`); `Err` with the origin when the endpoint does not allow it. Origins compare
    /// without regard to case, as on native endpoints.
    fn cors(&self, headers: &HeaderMap) -> Result<Option<String>, String> {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return Ok(None) };
        match &self.allowed_origins {
            Some(list) if !list.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) => Err(origin.to_owned()),
            _ => Ok(Some(origin.to_owned())),
        }
    }
}

/// Whether a client may be sent the recovery offset as the last argument of every event.
/// python-socketio calls a handler with every argument, so a one-argument handler would fail;
/// it never recovers anyway (it does not send back `pid`). Its Engine.IO client is told
/// apart by its `t` parameter, Python's `time.time()`, which has a fraction; the JavaScript
/// client's `t` (polling only) is a short base-64 string.
pub(crate) fn offsets_welcome(t: Option<&str>) -> bool {
    !t.is_some_and(|t| t.contains('.') && t.parse::<f64>().is_ok())
}

/// 503: the node's waiting room for sessions that have not authenticated is full.
fn waiting_room_full(full: GateFull) -> Response {
    let body = serde_json::json!({ "code": EngineError::BadRequest as u8, "message": full.to_string() });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

pub(crate) fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

fn with_cors(mut response: Response, origin: Option<String>) -> Response {
    if let Some(origin) = origin.and_then(|o| o.parse().ok()) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, header::HeaderValue::from_static("true"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, header::HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::HeaderValue::from_static("content-type, authorization"),
        );
    }
    response
}
