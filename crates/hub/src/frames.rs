//! What passes between a transport and a session: what the upgrade learned, the client's
//! frames as the transport decoded them, and the frames the session sends.

use bytes::Bytes;
use switchboard_protocol::Disconnect;

/// What the transport learned from the HTTP upgrade.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// A token from the Authorization header, `?token=` or the cookie.
    pub token: Option<String>,
    /// The peer's address.
    pub remote_addr: String,
    /// `?device=`: names the device for acknowledgements (a token's `device` claim wins).
    pub device: Option<String>,
    /// `?resume=1`: live events with a position wait for the client's first frame, which
    /// should be `resume`, so that replayed events come before them.
    pub resume: bool,
}

/// A frame from the client, as the transport decoded it.
#[derive(Debug)]
pub enum Inbound {
    /// A text frame.
    Text(String),
    /// A binary frame (not part of the native protocol).
    Binary,
    /// A pong answering the server's ping.
    Pong,
    /// The client closed the socket, or it broke.
    Closed,
    /// The transport refused a frame over its size limit.
    TooBig,
    /// The client broke the WebSocket protocol; the socket closes with this code and reason.
    Broken(Disconnect),
}

/// A frame for the client.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame, already encoded.
    Text(Bytes),
    /// A protocol-level ping.
    Ping,
    /// A close frame; the transport ends the socket after it.
    Close(Disconnect),
}
