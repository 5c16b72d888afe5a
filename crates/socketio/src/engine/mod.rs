//! Engine.IO v4 over axum: the handshake, HTTP long-polling, WebSocket (direct or upgraded
//! from polling with the probe), heartbeats and the protocol's HTTP errors.

pub(crate) mod packet;
pub(crate) mod socket;
mod ws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchboard_hub::CompressionSpec;
use switchboard_transport::websocket::{Settings, Upgrade};
use tokio::sync::mpsc;

use packet::Packet;
use socket::{EngineSocket, Timing, Transport};

/// What a new session is handed to: the Socket.IO layer, or the raw echo.
pub(crate) type OnSession = Arc<dyn Fn(Arc<EngineSocket>, mpsc::UnboundedReceiver<Packet>, Opening) + Send + Sync>;

/// What the request that opened a session said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opening {
    /// `?token=` or `Authorization: Bearer`.
    pub(crate) token: Option<String>,
    pub(crate) remote_addr: String,
    /// `?device=`.
    pub(crate) device: Option<String>,
}

/// The sessions of one endpoint.
pub(crate) struct Engine {
    sessions: Mutex<HashMap<String, Arc<EngineSocket>>>,
    timing: Timing,
    on_session: OnSession,
    /// Origins allowed to poll from a browser; `None`: any.
    allowed_origins: Option<Vec<String>>,
    /// The WebSocket transport's limit and compression.
    socket: Settings,
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
}

/// The protocol's error codes, answered with HTTP 400.
enum EngineError {
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    UnsupportedVersion = 5,
}

impl EngineError {
    fn response(self, message: &str) -> Response {
        let body = serde_json::json!({ "code": self as u8, "message": message });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

impl Engine {
    pub(crate) fn new(
        timing: Timing,
        on_session: OnSession,
        allowed_origins: Option<Vec<String>>,
        compression: Option<&CompressionSpec>,
    ) -> Arc<Self> {
        let socket = Settings::new(timing.max_payload, compression);
        Arc::new(Self { sessions: Mutex::new(HashMap::new()), timing, on_session, allowed_origins, socket })
    }

    /// The largest message a client may send.
    pub(crate) fn max_payload(&self) -> usize {
        self.timing.max_payload
    }

    fn session(&self, sid: &str) -> Option<Arc<EngineSocket>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(sid).cloned()
    }

    /// Opens a session and forgets it when it closes.
    fn open(self: &Arc<Self>, transport: Transport, opening: Opening) -> Arc<EngineSocket> {
        let (socket, received) = EngineSocket::new(transport, self.timing);
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(socket.sid.clone(), socket.clone());
        let (engine, closing) = (self.clone(), socket.clone());
        tokio::spawn(async move {
            closing.closed().cancelled().await;
            engine.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&closing.sid);
        });
        tokio::spawn(socket.clone().heartbeat());
        (self.on_session)(socket.clone(), received, opening);
        socket
    }

    /// Every request to the endpoint's path.
    pub(crate) async fn handle(
        self: Arc<Self>,
        method: Method,
        query: EngineQuery,
        headers: HeaderMap,
        ws: Option<Upgrade>,
        remote_addr: String,
        body: Bytes,
    ) -> Response {
        let cors = self.cors(&headers);
        if method == Method::OPTIONS {
            return with_cors(StatusCode::NO_CONTENT.into_response(), cors);
        }
        if query.eio.as_deref() != Some("4") {
            return with_cors(EngineError::UnsupportedVersion.response("Unsupported protocol version"), cors);
        }
        let opening = Opening {
            token: query.token.clone().or_else(|| bearer(&headers)),
            remote_addr,
            device: query.device.clone(),
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
                Some(socket) if method == Method::GET => poll(socket).await,
                Some(socket) if method == Method::POST => post(socket, &body),
                Some(_) => EngineError::BadRequest.response("Bad request: use GET or POST"),
            },
            _ => EngineError::UnknownTransport.response("Transport unknown"),
        };
        with_cors(response, cors)
    }

    fn handshake(self: &Arc<Self>, opening: Opening) -> Response {
        let socket = self.open(Transport::Polling, opening);
        text(socket.open_packet(true).encode())
    }

    fn websocket(self: &Arc<Self>, ws: Upgrade, sid: Option<&str>, opening: Opening) -> Response {
        let existing = match sid {
            None => None,
            Some(sid) => match self.session(sid) {
                Some(socket) if socket.transport() == Transport::Polling => Some(socket),
                Some(_) => return EngineError::BadRequest.response("Bad request: already upgraded"),
                None => return EngineError::UnknownSid.response("Session ID unknown"),
            },
        };
        let engine = self.clone();
        let (response, pending) = self.socket.accept(ws);
        tokio::spawn(async move {
            let Some(socket) = pending.socket().await else { return };
            match existing {
                Some(session) => ws::upgrade(session, socket).await,
                None => {
                    let session = engine.open(Transport::WebSocket, opening);
                    ws::direct(session, socket).await
                }
            }
        });
        response
    }

    /// CORS headers for a browser's polling requests.
    fn cors(&self, headers: &HeaderMap) -> Option<String> {
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        match &self.allowed_origins {
            Some(list) if !list.iter().any(|o| o == origin) => None,
            _ => Some(origin.to_owned()),
        }
    }
}

/// A long-poll: waits for packets; a noop when the session moved to WebSocket.
async fn poll(socket: Arc<EngineSocket>) -> Response {
    let Some(_guard) = socket.begin_poll() else {
        socket.close();
        return EngineError::BadRequest.response("Bad request: overlapping polls");
    };
    let batch = socket.next_batch(Transport::Polling).await;
    if batch.is_empty() {
        let last = if socket.is_closed() { Packet::Close } else { Packet::Noop };
        return text(last.encode());
    }
    text(Packet::encode_polling(&batch))
}

/// Packets from the client.
fn post(socket: Arc<EngineSocket>, body: &[u8]) -> Response {
    if body.len() > socket.timing.max_payload {
        socket.close();
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload over maxPayload").into_response();
    }
    let packets = std::str::from_utf8(body).ok().map(Packet::decode_polling);
    match packets {
        Some(Ok(packets)) => {
            for packet in packets {
                socket.received(packet);
            }
            ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
        }
        _ => {
            socket.close();
            EngineError::BadRequest.response("Bad request: malformed payload")
        }
    }
}

fn text(body: String) -> Response {
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
