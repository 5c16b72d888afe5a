//! Reads whole Socket.IO packets from an Engine.IO session: a binary packet together with
//! the binary messages that follow it, within bounds: at most [`MAX_ATTACHMENTS`] of them,
//! together at most `maxPayload` bytes, and none before the client has connected.

use bytes::Bytes;
use tokio::sync::mpsc::Receiver;

use super::packet::{SioError, SioPacket};
use crate::engine::packet::Packet;

/// Binary attachments one packet may announce.
pub(crate) const MAX_ATTACHMENTS: usize = 64;

/// What the session's client sent.
pub(crate) enum Incoming {
    /// A Socket.IO packet and its attachments.
    Packet(SioPacket, Vec<Bytes>),
    /// An answer to the Engine.IO heartbeat: the client is alive.
    Pong,
}

/// The Socket.IO packets of one session.
pub(crate) struct Reader {
    received: Receiver<Packet>,
    /// The largest message a client may send: also the bound on one packet's attachments.
    max_payload: usize,
}

impl Reader {
    pub(crate) fn new(received: Receiver<Packet>, max_payload: usize) -> Self {
        Self { received, max_payload }
    }

    /// The next packet and its attachments; `None` when the session closed. Attachments are
    /// accepted only when `connected` (a namespace accepted the client).
    pub(crate) async fn next(&mut self, connected: bool) -> Option<Result<Incoming, SioError>> {
        let text = match self.received.recv().await? {
            Packet::Message(text) => text,
            Packet::Pong(_) => return Some(Ok(Incoming::Pong)),
            _ => return Some(Err(SioError("binary message without a binary packet"))),
        };
        let packet = match SioPacket::decode(&text) {
            Ok(packet) => packet,
            Err(e) => return Some(Err(e)),
        };
        if packet.attachments > 0 && !connected {
            return Some(Err(SioError("binary attachments before CONNECT")));
        }
        if packet.attachments > MAX_ATTACHMENTS {
            return Some(Err(SioError("more binary attachments than allowed")));
        }
        let mut attachments = Vec::with_capacity(packet.attachments);
        let mut bytes = 0usize;
        while attachments.len() < packet.attachments {
            match self.received.recv().await? {
                Packet::Pong(_) => continue,
                Packet::Binary(data) => {
                    bytes += data.len();
                    if bytes > self.max_payload {
                        return Some(Err(SioError("binary attachments over maxPayload")));
                    }
                    attachments.push(data);
                }
                _ => return Some(Err(SioError("fewer attachments than announced"))),
            }
        }
        Some(Ok(Incoming::Packet(packet, attachments)))
    }
}
