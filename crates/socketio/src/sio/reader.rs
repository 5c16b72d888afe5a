//! Reads whole Socket.IO packets from an Engine.IO session: a binary packet together with
//! the binary messages that follow it.

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;

use super::packet::{SioError, SioPacket};
use crate::engine::packet::Packet;

/// The Socket.IO packets of one session.
pub(crate) struct Reader {
    received: UnboundedReceiver<Packet>,
}

impl Reader {
    pub(crate) fn new(received: UnboundedReceiver<Packet>) -> Self {
        Self { received }
    }

    /// The next packet and its attachments; `None` when the session closed.
    pub(crate) async fn next(&mut self) -> Option<Result<(SioPacket, Vec<Bytes>), SioError>> {
        let text = match self.received.recv().await? {
            Packet::Message(text) => text,
            _ => return Some(Err(SioError("binary message without a binary packet"))),
        };
        let packet = match SioPacket::decode(&text) {
            Ok(packet) => packet,
            Err(e) => return Some(Err(e)),
        };
        let mut attachments = Vec::with_capacity(packet.attachments.min(16));
        while attachments.len() < packet.attachments {
            match self.received.recv().await? {
                Packet::Binary(bytes) => attachments.push(bytes),
                _ => return Some(Err(SioError("fewer attachments than announced"))),
            }
        }
        Some(Ok((packet, attachments)))
    }
}
