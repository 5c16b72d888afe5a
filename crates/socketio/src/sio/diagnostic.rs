//! The conformance mode: what the published Socket.IO and Engine.IO protocol test suites
//! expect of a server, so they can be run against this adapter. Off unless a manifest
//! declares an endpoint with `"protocol": "socket.io-conformance"` or `"engine.io-echo"`;
//! it touches no hub and no app data.
//!
//! - `socket.io-conformance`: namespaces `/` and `/custom` open without auth (others answer
//!   `Invalid namespace`); on connect an `auth` event echoes the CONNECT payload; `message`
//!   is echoed as `message-back` (binary too) and `message-with-ack` is acknowledged with
//!   its own arguments.
//! - `engine.io-echo`: Engine.IO only, every message echoed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc::Receiver;

use super::packet::{Kind, SioPacket};
use super::reader::{Incoming, Reader};
use crate::engine::packet::Packet;
use crate::engine::socket::{EngineSocket, Timing};
use crate::engine::Opening;

/// The suites' configuration: ping every 300 ms, 200 ms to answer, 1 MB per message.
pub(crate) const TIMING: Timing = Timing {
    ping_interval: Duration::from_millis(300),
    ping_timeout: Duration::from_millis(200),
    max_payload: 1_000_000,
    max_queue: 4 << 20,
};
/// The suites' connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const NAMESPACES: [&str; 2] = ["/", "/custom"];

/// Starts the Engine.IO echo for a new session.
pub(crate) fn engine_echo(socket: Arc<EngineSocket>, mut received: Receiver<Packet>, _: Opening) {
    tokio::spawn(async move {
        while let Some(packet) = received.recv().await {
            if !matches!(packet, Packet::Pong(_)) {
                socket.send(packet);
            }
        }
    });
}

/// Starts the Socket.IO conformance behaviour for a new session.
pub(crate) fn socket_io(socket: Arc<EngineSocket>, received: Receiver<Packet>, _: Opening) {
    tokio::spawn(async move {
        let mut reader = Reader::new(received, TIMING.max_payload);
        let mut joined: Vec<String> = Vec::new();
        let connect_by = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let next = tokio::select! {
                next = reader.next(!joined.is_empty()) => next,
                _ = tokio::time::sleep_until(connect_by), if joined.is_empty() => None,
            };
            let (packet, attachments) = match next {
                Some(Ok(Incoming::Packet(packet, attachments))) => (packet, attachments),
                Some(Ok(Incoming::Pong)) => continue,
                _ => break,
            };
            for packet in answer(&mut joined, packet, attachments) {
                socket.send(packet);
                socket.drained().await;
            }
        }
        socket.close();
    });
}

/// What the conformance mode answers to one packet, in order.
fn answer(joined: &mut Vec<String>, packet: SioPacket, attachments: Vec<Bytes>) -> Vec<Packet> {
    let ns = packet.namespace.clone();
    let mut out = Vec::new();
    let mut send = |packet: SioPacket, attachments: &[Bytes]| {
        out.push(Packet::Message(packet.encode()));
        out.extend(attachments.iter().map(|bytes| Packet::Binary(bytes.clone())));
    };
    match packet.kind {
        Kind::Connect if !NAMESPACES.contains(&ns.as_str()) => {
            send(SioPacket::new(Kind::ConnectError, &ns, None, Some(json!({ "message": "Invalid namespace" }))), &[]);
        }
        Kind::Connect => {
            joined.push(ns.clone());
            let sid = crate::random_id();
            send(SioPacket::new(Kind::Connect, &ns, None, Some(json!({ "sid": sid }))), &[]);
            let auth = packet.data.unwrap_or_else(|| json!({}));
            send(SioPacket::new(Kind::Event, &ns, None, Some(json!(["auth", auth]))), &[]);
        }
        Kind::Event | Kind::BinaryEvent if joined.contains(&ns) => {
            let Some(Value::Array(mut args)) = packet.data else { return out };
            let name = args.first().and_then(Value::as_str).unwrap_or_default().to_owned();
            let binary = packet.kind == Kind::BinaryEvent;
            if name == "message" {
                args[0] = json!("message-back");
                let kind = if binary { Kind::BinaryEvent } else { Kind::Event };
                let back = SioPacket {
                    kind,
                    namespace: ns,
                    id: None,
                    data: Some(Value::Array(args)),
                    attachments: attachments.len(),
                };
                send(back, &attachments);
            } else if let (Some(id), "message-with-ack") = (packet.id, name.as_str()) {
                let kind = if binary { Kind::BinaryAck } else { Kind::Ack };
                let ack = SioPacket {
                    kind,
                    namespace: ns,
                    id: Some(id),
                    data: Some(Value::Array(args.split_off(1))),
                    attachments: attachments.len(),
                };
                send(ack, &attachments);
            }
        }
        Kind::Disconnect => joined.retain(|n| *n != ns),
        _ => {}
    }
    out
}
