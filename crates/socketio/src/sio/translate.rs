//! The hub's frames, as Socket.IO packets: events become `EVENT ["type", data, offset]`,
//! replies and errors to emits with a callback become `ACK [{ok, data | error}]`, and the
//! hub's `connected` (or `resumed`, when recovering) becomes the namespace's CONNECT.
//!
//! The offset, appended as the last argument of every event (as Socket.IO's own connection
//! state recovery does), is the connection's newest position on every channel with history,
//! encoded; socket.io-client hands it back on reconnect, and it becomes a `resume`. Clients
//! that would take it for an argument of their own (python-socketio) get events without it.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_hub::Outbound;
use switchboard_protocol::Disconnect;

use super::event::Event;
use super::packet::{Kind, SioPacket};
use crate::engine::packet::Packet;
use crate::engine::socket::EngineSocket;

/// The `ref` of the `resume` the adapter sends for a recovering client.
pub(crate) const RECOVERY_REF: &str = "socket.io-recovery";

/// Newest position per channel: channel -> (epoch, seq).
pub(crate) type Positions = BTreeMap<String, (String, u64)>;

/// A hub frame, as far as the adapter reads it.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "ref", default)]
    reference: Option<Value>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
}

/// Turns one connection's hub frames into Socket.IO packets.
pub(crate) struct Translator {
    pub(crate) socket: Arc<EngineSocket>,
    /// The Socket.IO socket id sent in CONNECT.
    pub(crate) sid: String,
    /// This connection's recovery id.
    pub(crate) pid: String,
    /// The pid a reconnecting client sent: CONNECT waits for the replay's outcome.
    pub(crate) recovering: Option<String>,
    pub(crate) connected: bool,
    /// The hub's close reached this translator.
    pub(crate) closed: bool,
    pub(crate) positions: Positions,
    /// The encoded positions, when this client is sent offsets.
    offset: Option<String>,
}

impl Translator {
    pub(crate) fn new(
        socket: Arc<EngineSocket>,
        recovering: Option<String>,
        positions: Positions,
        offsets: bool,
    ) -> Self {
        let offset = offsets.then(|| encode_offset(&positions));
        let (sid, pid) = (crate::random_id(), crate::random_id());
        Self { socket, sid, pid, recovering, connected: false, closed: false, positions, offset }
    }

    pub(crate) fn on_frame(&mut self, frame: Outbound) {
        match frame {
            Outbound::Ping => {} // Engine.IO has its own heartbeat
            Outbound::Close(reason) => self.close(&reason),
            // The same event went to other Socket.IO connections on this thread: parsed already.
            Outbound::Text(bytes) => match Event::recent(&bytes) {
                Some(event) => self.on_event(&event),
                None => match serde_json::from_slice::<Frame<'_>>(&bytes) {
                    Ok(frame) => self.on_text(frame, &bytes),
                    Err(e) => tracing::error!(error = %e, "hub frame the Socket.IO adapter cannot read"),
                },
            },
        }
    }

    /// An event: `2["type",data]`, with the offset as a last argument for clients that use it.
    fn on_event(&mut self, event: &Event) {
        let Some(offset) = &mut self.offset else {
            return self.socket.send(Packet::Encoded(event.shared()));
        };
        if let Some((channel, epoch, seq)) = &event.position {
            self.positions.insert(channel.clone(), (epoch.clone(), *seq));
            *offset = encode_offset(&self.positions);
        }
        self.socket.send(Packet::Encoded(event.with_offset(offset)));
    }

    fn on_text(&mut self, frame: Frame<'_>, bytes: &bytes::Bytes) {
        let data = frame.data.map_or("null", RawValue::get);
        // The hub's own frames carry no channel; an app's event of the same name does.
        let own = frame.channel.is_none();
        match (frame.kind.as_str(), &frame.reference) {
            ("connected", _) if own && self.recovering.is_none() => self.connect(self.pid.clone()),
            ("connected", _) | ("pong", None) if own => {}
            ("resumed", Some(Value::String(r))) if r == RECOVERY_REF => self.recovered(data),
            (kind, Some(reference)) if reference.is_u64() && (kind == "error" || kind.ends_with(":error")) => {
                let error = serde_json::from_str::<Value>(data).unwrap_or(Value::Null);
                self.ack(reference, &json!({ "ok": false, "error": error }).to_string());
            }
            (_, Some(reference)) if reference.is_u64() => {
                self.ack(reference, &format!("{{\"ok\":true,\"data\":{data}}}"));
            }
            (kind, _) => {
                let head = format!("2[{},{data}", serde_json::to_string(kind).unwrap_or_default());
                let position = match (frame.channel, frame.epoch, frame.seq) {
                    (Some(channel), Some(epoch), Some(seq)) => Some((channel, epoch, seq)),
                    _ => None,
                };
                self.on_event(&Event::new(bytes.clone(), head, position));
            }
        }
    }

    /// The outcome of a recovering client's replay: CONNECT with its own pid when everything
    /// was recovered (socket.io-client then reports `recovered`), else with a new one.
    fn recovered(&mut self, data: &str) {
        let outcome: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if let Some(Value::Object(positions)) = outcome.get("positions") {
            for (channel, p) in positions {
                if let (Some(epoch), Some(seq)) = (p["epoch"].as_str(), p["seq"].as_u64()) {
                    self.positions.insert(channel.clone(), (epoch.to_owned(), seq));
                }
            }
            if let Some(offset) = &mut self.offset {
                *offset = encode_offset(&self.positions);
            }
        }
        let pid = match (outcome["recovered"].as_bool(), self.recovering.take()) {
            (Some(true), Some(pid)) => pid,
            _ => self.pid.clone(),
        };
        self.connect(pid);
    }

    fn connect(&mut self, pid: String) {
        self.pid = pid;
        self.connected = true;
        self.socket.authenticated();
        let data = json!({ "sid": self.sid, "pid": self.pid });
        self.send(SioPacket::new(Kind::Connect, "/", None, Some(data)));
    }

    fn ack(&self, reference: &Value, payload: &str) {
        if let Some(id) = reference.as_u64() {
            self.socket.send(Packet::Message(format!("3{id}[{payload}]")));
        }
    }

    /// Before CONNECT, a refusal is a CONNECT_ERROR a person can read. After it, a close the
    /// client should recover from (shutdown, slow consumer) drops the transport so it
    /// reconnects; a final one (kicked, token expired) is a DISCONNECT, which it does not.
    fn close(&mut self, reason: &Disconnect) {
        self.closed = true;
        if !self.connected {
            let data = json!({ "message": reason.reason, "data": { "code": reason.code } });
            return self.send(SioPacket::new(Kind::ConnectError, "/", None, Some(data)));
        }
        if Disconnect::should_reconnect(reason.code) {
            self.socket.close();
        } else {
            self.send(SioPacket::new(Kind::Disconnect, "/", None, None));
        }
    }

    fn send(&self, packet: SioPacket) {
        self.socket.send(Packet::Message(packet.encode()));
    }
}

/// Positions as an offset string.
pub(crate) fn encode_offset(positions: &Positions) -> String {
    let map: serde_json::Map<String, Value> =
        positions.iter().map(|(channel, (epoch, seq))| (channel.clone(), json!([epoch, seq]))).collect();
    URL_SAFE_NO_PAD.encode(Value::Object(map).to_string())
}

/// An offset string back as positions; `None` when it is not one of ours.
pub(crate) fn decode_offset(offset: &str) -> Option<Positions> {
    let bytes = URL_SAFE_NO_PAD.decode(offset).ok()?;
    let map: BTreeMap<String, (String, u64)> = serde_json::from_slice(&bytes).ok()?;
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_foreign_ones_are_refused() {
        let mut positions = Positions::new();
        positions.insert("user:ann".into(), ("9c2f".into(), 17));
        positions.insert("group:g".into(), ("77aa".into(), 3));
        assert_eq!(decode_offset(&encode_offset(&positions)), Some(positions));
        assert_eq!(decode_offset("not-an-offset!"), None);
        assert_eq!(decode_offset(&encode_offset(&Positions::new())), Some(Positions::new()));
    }
}
