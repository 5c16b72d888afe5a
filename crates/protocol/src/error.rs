//! Error codes of `error` frames and HTTP error bodies.

use std::fmt;

/// The `code` of an error a client or backend can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Malformed JSON, a missing or ill-typed field.
    BadRequest,
    /// A message type the hub does not own and no handler takes.
    UnknownType,
    /// The app backend's handler failed or could not be reached.
    HandlerFailed,
    /// The client is over its message rate.
    RateLimited,
    /// A subscribe or join the policy denies; another app's key.
    Forbidden,
    /// No credentials, or credentials that do not verify.
    Unauthorized,
    /// No such app, user, channel or record.
    NotFound,
    /// The body is larger than allowed, or an event larger than any connection's queue
    /// (`limits.outbox_max_bytes`) could take.
    PayloadTooLarge,
    /// The server failed; retrying later may help.
    Internal,
    /// The server is shutting down or not ready, a backend (the broker, the store) is away,
    /// or it is publishing more than its history store commits: retry, after the HTTP
    /// answer's `Retry-After` when it has one.
    Unavailable,
}

impl ErrorCode {
    /// The snake_case name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::HandlerFailed => "handler_failed",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status that goes with this code on the HTTP API.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::UnknownType => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::HandlerFailed => 502,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
