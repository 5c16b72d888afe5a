//! One Socket.IO connection to the default namespace, as a hub session: CONNECT (with
//! `auth.token`, and `pid`/`offset` when recovering) starts it; EVENT packets become client
//! frames (`ref` = the ack id); the hub's frames come back through the [`Translator`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use switchboard_hub::{session, App, EndpointSpec, Handshake, Hub, Inbound, Outbound};
use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::time::Instant;

use super::packet::{attach, Kind, SioError, SioPacket};
use super::reader::{Incoming, Reader};
use super::translate::{decode_offset, Translator, RECOVERY_REF};
use crate::engine::packet::Packet;
use crate::engine::socket::EngineSocket;
use crate::engine::Opening;

/// How long a client has to send CONNECT after the Engine.IO handshake (or after its hub
/// session ended).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// CONNECTs a client may try in that while: a refused one (a bad token) may be retried, a
/// client that keeps trying is closed.
const MAX_CONNECTS: u32 = 5;
/// Client frames waiting for the hub session, at most: past it, the bridge stops reading
/// and the client is held back by its transport.
const SESSION_FRAMES: usize = 16;

/// What every connection of one endpoint shares.
pub(crate) struct Endpoint {
    pub(crate) hub: Hub,
    pub(crate) app: Arc<App>,
    pub(crate) spec: Arc<EndpointSpec>,
}

/// Serves one Engine.IO session until it closes.
pub(crate) async fn run(
    endpoint: Arc<Endpoint>,
    socket: Arc<EngineSocket>,
    received: Receiver<Packet>,
    opening: Opening,
) {
    let mut reader = Reader::new(received, socket.timing.max_payload);
    let mut session: Option<Attached> = None;
    // A client without a live hub session has CONNECT_TIMEOUT to make one: from the handshake,
    // and again whenever its session ends; it may try MAX_CONNECTS times in that while.
    let (mut connect_by, mut connects) = (Instant::now() + CONNECT_TIMEOUT, 0);
    loop {
        if session.as_ref().is_some_and(|s| !s.is_live()) {
            session = None;
            (connect_by, connects) = (Instant::now() + CONNECT_TIMEOUT, connects);
            // It waits like a newcomer again, in the waiting room.
            if !socket.wait_again() {
                break;
            }
        }
        let live = session.is_some();
        let next = tokio::select! {
            next = reader.next(live) => next,
            _ = tokio::time::sleep_until(connect_by), if !live => {
                tracing::debug!(sid = %socket.sid, "no Socket.IO CONNECT in time");
                break;
            }
            // The hub session ended (refused, kicked, closed): see above.
            () = ended(&session), if live => continue,
            _ = socket.closed().cancelled() => None,
        };
        let (packet, attachments) = match next {
            Some(Ok(Incoming::Packet(packet, attachments))) => (packet, attachments),
            Some(Ok(Incoming::Pong)) => {
                if let Some(attached) = &session {
                    let _ = attached.tx.try_send(Inbound::Pong);
                }
                continue;
            }
            _ => break, // closed, or malformed
        };
        if packet.namespace != "/" {
            let refusal = json!({ "message": "Invalid namespace" });
            let error = SioPacket::new(Kind::ConnectError, &packet.namespace, None, Some(refusal));
            socket.send(Packet::Message(error.encode()));
            continue;
        }
        match (packet.kind, &session) {
            (Kind::Connect, None) if connects >= MAX_CONNECTS => break,
            (Kind::Connect, None) => {
                connects += 1;
                session = start(&endpoint, &socket, &opening, packet.data.unwrap_or(Value::Null));
            }
            (Kind::Event | Kind::BinaryEvent, Some(attached)) => match client_frame(packet, &attachments) {
                Ok(Some(frame)) => {
                    let _ = attached.tx.send(Inbound::Text(frame)).await;
                }
                Ok(None) => {}
                Err(_) => break, // placeholders that do not match the attachments
            },
            (Kind::Disconnect, Some(_)) => {
                if let Some(attached) = session.take() {
                    attached.left.store(true, Ordering::Relaxed);
                    let _ = attached.tx.send(Inbound::Closed).await;
                }
                (connect_by, connects) = (Instant::now() + CONNECT_TIMEOUT, 0);
                if !socket.wait_again() {
                    break;
                }
            }
            _ => {} // events before CONNECT, acks of server emits (none are asked for), repeated CONNECTs
        }
    }
    socket.close();
}

/// Resolves when the hub session ends.
async fn ended(session: &Option<Attached>) {
    match session {
        Some(attached) => attached.tx.closed().await,
        None => std::future::pending().await,
    }
}

/// A hub session the client is connected to: where its frames go, and whether it left.
struct Attached {
    tx: Sender<Inbound>,
    left: Arc<AtomicBool>,
}

impl Attached {
    /// Whether the hub session still reads (it ends when refused, kicked or closed).
    fn is_live(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// Starts the hub session for a CONNECT; `None` when it is refused at once (no token).
fn start(endpoint: &Arc<Endpoint>, socket: &Arc<EngineSocket>, opening: &Opening, auth: Value) -> Option<Attached> {
    let (tx, rx) = mpsc::channel(SESSION_FRAMES);
    let left = Arc::new(AtomicBool::new(false));
    let token = auth.get("token").and_then(Value::as_str).map(str::to_owned).or_else(|| opening.token.clone());
    let recovery = auth.get("offset").and_then(Value::as_str).and_then(decode_offset);
    let pid = auth.get("pid").and_then(Value::as_str).map(str::to_owned);
    let recovering = recovery.is_some() && pid.is_some();
    // A client that sends back a pid uses offsets; python-socketio's handshake tells it apart.
    let offsets = pid.is_some() || opening.offsets;
    let translator =
        Translator::new(socket.clone(), pid.filter(|_| recovering), recovery.clone().unwrap_or_default(), offsets);
    if token.is_none() && endpoint.spec.auth_required {
        let mut translator = translator;
        translator.on_frame(Outbound::Close(switchboard_protocol::Disconnect::unauthorized(
            "no token: connect with io(url, { auth: { token } })",
        )));
        return None; // a new CONNECT may try again
    }
    if let Some(positions) = recovery.filter(|_| recovering) {
        let positions: serde_json::Map<String, Value> =
            positions.into_iter().map(|(c, (epoch, seq))| (c, json!({ "epoch": epoch, "seq": seq }))).collect();
        let resume = json!({ "type": "resume", "ref": RECOVERY_REF, "data": { "positions": positions } });
        let _ = tx.try_send(Inbound::Text(resume.to_string())); // the first frame: there is room
    }
    let handshake = Handshake {
        token,
        remote_addr: opening.remote_addr.clone(),
        device: opening.device.clone(),
        resume: recovering,
    };
    let inbound = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) });
    let outlet = Outlet { translator, left: left.clone() };
    let outbound = futures_util::sink::unfold(outlet, |mut outlet, frame: Outbound| async move {
        outlet.translator.on_frame(frame);
        // While the transport is behind, the hub's writer waits here and its outbox fills:
        // a client that does not read is closed by the outbox's bound, as on native sockets.
        outlet.translator.socket.room().await;
        Ok::<_, Infallible>(outlet)
    });
    let (hub, app, spec) = (endpoint.hub.clone(), endpoint.app.clone(), endpoint.spec.clone());
    endpoint.hub.sessions().spawn(session::run(hub, app, spec, handshake, Box::pin(inbound), Box::pin(outbound)));
    Some(Attached { tx, left })
}

/// Where a hub session's frames go: the translator, until the session ends and drops it.
struct Outlet {
    translator: Translator,
    /// The client left the namespace (DISCONNECT): the Engine.IO session stays for another CONNECT.
    left: Arc<AtomicBool>,
}

impl Drop for Outlet {
    /// A hub session that ended without its close reaching the translator (its writer gave up
    /// on a client that stopped reading or polling) ends the Engine.IO session too, so that
    /// the client reconnects and recovers.
    fn drop(&mut self) {
        if !self.translator.closed && !self.left.load(Ordering::Relaxed) {
            self.translator.socket.close();
        }
    }
}

/// `["type", data?, ...]` as a native client frame; the ack id becomes its `ref`. `None` for
/// a packet that is no event; an error when its placeholders do not match its attachments.
fn client_frame(packet: SioPacket, attachments: &[Bytes]) -> Result<Option<String>, SioError> {
    let Some(mut data) = packet.data else { return Ok(None) };
    if !attachments.is_empty() {
        attach(&mut data, attachments)?;
    }
    let Value::Array(args) = data else { return Ok(None) };
    let mut args = args.into_iter();
    let Some(kind) = args.next() else { return Ok(None) };
    let rest: Vec<Value> = args.collect();
    let data = match rest.len() {
        0 => Value::Null,
        1 => rest.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(rest),
    };
    let mut frame = json!({ "type": kind, "data": data });
    if let Some(id) = packet.id {
        frame["ref"] = json!(id);
    }
    Ok(Some(frame.to_string()))
}
