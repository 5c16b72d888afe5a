//! Engine.IO v4 packets: one character of type, then the data. Over WebSocket a text frame
//! is one packet and a binary frame is one binary message; over HTTP long-polling several
//! packets share a body, separated by the record separator (0x1e), binary ones as `b` and
//! base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;

/// The separator between packets of one polling body.
pub(crate) const SEPARATOR: char = '\u{1e}';

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    /// The handshake: JSON with `sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`.
    Open(String),
    /// Ends the session.
    Close,
    /// A heartbeat (`probe` during an upgrade).
    Ping(String),
    /// The answer to a ping.
    Pong(String),
    /// A text message: a Socket.IO packet.
    Message(String),
    /// A text message already encoded, its type (`4`) included. The server's own events are
    /// built this way, in one allocation, and an event without a per-connection part is
    /// built once and shared by every connection: over WebSocket the frame takes it as is.
    Encoded(Bytes),
    /// A binary message: a Socket.IO attachment.
    Binary(Bytes),
    /// Completes an upgrade to WebSocket.
    Upgrade,
    /// Nothing: ends a pending poll during an upgrade.
    Noop,
}

/// A malformed packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Engine.IO packet: {0}")]
pub(crate) struct PacketError(pub(crate) &'static str);

impl Packet {
    /// About how many bytes it takes in a queue: its payload, plus one for its type.
    pub(crate) fn size(&self) -> usize {
        match self {
            Self::Open(text) | Self::Ping(text) | Self::Pong(text) | Self::Message(text) => 1 + text.len(),
            Self::Binary(bytes) => 1 + bytes.len(),
            Self::Encoded(bytes) => bytes.len(),
            Self::Close | Self::Upgrade | Self::Noop => 1,
        }
    }

    /// The text form (binary messages are not text; see [`Packet::encode_polling`]).
    pub(crate) fn encode(&self) -> String {
        match self {
            Self::Open(json) => format!("0{json}"),
            Self::Close => "1".into(),
            Self::Ping(data) => format!("2{data}"),
            Self::Pong(data) => format!("3{data}"),
            Self::Message(text) => format!("4{text}"),
            Self::Encoded(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Self::Binary(bytes) => format!("b{}", STANDARD.encode(bytes)),
            Self::Upgrade => "5".into(),
            Self::Noop => "6".into(),
        }
    }

    /// Reads one text packet (a WebSocket text frame or one part of a polling body).
    pub(crate) fn decode(text: &str) -> Result<Self, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError("empty packet"))?;
        let rest = chars.as_str();
        Ok(match kind {
            '0' => Self::Open(rest.into()),
            '1' => Self::Close,
            '2' => Self::Ping(rest.into()),
            '3' => Self::Pong(rest.into()),
            '4' => Self::Message(rest.into()),
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            'b' => {
                Self::Binary(STANDARD.decode(rest).map_err(|_| PacketError("bad base64 in a binary packet"))?.into())
            }
            _ => return Err(PacketError("unknown packet type")),
        })
    }

    /// Packets as one polling response body.
    pub(crate) fn encode_polling(packets: &[Packet]) -> String {
        let parts: Vec<String> = packets.iter().map(Packet::encode).collect();
        parts.join(&SEPARATOR.to_string())
    }

    /// A polling request body as packets (the server hands them on one at a time instead).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn decode_polling(body: &str) -> Result<Vec<Packet>, PacketError> {
        body.split(SEPARATOR).map(Packet::decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_through_polling_bodies() {
        let packets = vec![
            Packet::Message("hello".into()),
            Packet::Binary(Bytes::from_static(&[1, 2, 3])),
            Packet::Ping(String::new()),
            Packet::Pong("probe".into()),
            Packet::Noop,
        ];
        let body = Packet::encode_polling(&packets);
        assert_eq!(body, "4hello\u{1e}bAQID\u{1e}2\u{1e}3probe\u{1e}6");
        assert_eq!(Packet::decode_polling(&body).unwrap(), packets);
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert!(Packet::decode("").is_err());
        assert!(Packet::decode("9x").is_err());
        assert!(Packet::decode("b!!!").is_err());
        assert!(Packet::decode_polling("4a\u{1e}").is_err(), "an empty part is malformed");
    }
}
