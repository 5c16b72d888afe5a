//! Close codes: why the server ended a connection, and whether a client should come back.

use std::borrow::Cow;

/// A close code and a reason a person can read. Sent as the WebSocket close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The WebSocket close code.
    pub code: u16,
    /// Why, in words; at most 123 bytes on the wire.
    pub reason: Cow<'static, str>,
}

impl Disconnect {
    /// 1000: the client asked to close.
    pub const NORMAL: u16 = 1000;
    /// 1001: the server is shutting down; resume on another node.
    pub const GOING_AWAY: u16 = 1001;
    /// 1009: a frame was larger than the endpoint's `max_message_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// 1011: an internal error.
    pub const INTERNAL: u16 = 1011;
    /// 4008: the connection's outbound queue overflowed; it was too slow to read.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// 4009: events of a channel were lost on the way to this node and are gone from
    /// history: reconnect and resume, which reports what cannot be recovered.
    pub const RESYNC: u16 = 4009;
    /// 4401: missing, invalid or expired token.
    pub const UNAUTHORIZED: u16 = 4401;
    /// 4403: forbidden: disconnected by the server API, or over a per-user limit.
    pub const FORBIDDEN: u16 = 4403;
    /// 4408: no `auth` frame arrived in time.
    pub const AUTH_TIMEOUT: u16 = 4408;
    /// 4429: the client kept sending over its rate limit.
    pub const RATE_LIMITED: u16 = 4429;

    /// A disconnect with a fixed or computed reason.
    pub fn new(code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        let mut reason = reason.into();
        if reason.len() > 123 {
            // RFC 6455 caps the close payload at 125 bytes, two of which are the code.
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason = Cow::Owned(reason[..end].to_owned());
        }
        Self { code, reason }
    }

    /// 4401 with the reason the token was refused.
    pub fn unauthorized(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Self::UNAUTHORIZED, reason)
    }

    /// 1001, sent to every client at shutdown.
    pub fn going_away() -> Self {
        Self::new(Self::GOING_AWAY, "server shutting down; reconnect and resume")
    }

    /// 4009 for the subscribers of a channel whose events this node could not recover.
    pub fn resync() -> Self {
        Self::new(Self::RESYNC, "events were lost on the way to this node; reconnect and resume")
    }

    /// 4008 for a connection whose outbound queue overflowed.
    pub fn slow_consumer() -> Self {
        Self::new(Self::SLOW_CONSUMER, "slow consumer: outbound queue overflowed")
    }

    /// Whether a client should reconnect after this close (with backoff).
    ///
    /// 4403 (kicked), 4401 (token refused) and 1009 (message too big) repeat if the
    /// client retries unchanged, so they are terminal; a client that can get a new token
    /// may reconnect after 4401.
    pub fn should_reconnect(code: u16) -> bool {
        !matches!(code, Self::FORBIDDEN | Self::UNAUTHORIZED | Self::TOO_BIG | Self::NORMAL)
    }
}
