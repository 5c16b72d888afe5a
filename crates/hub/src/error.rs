//! Errors of hub operations called by the HTTP API.

use switchboard_broker::BrokerError;
use switchboard_protocol::ErrorCode;
use switchboard_store::StoreError;

/// Why a hub operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// The broker failed.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// A backend cannot take the request now; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// More than any connection's queue could take (`limits.outbox_max_bytes`): no
    /// subscriber could ever receive it, so it is refused whole.
    #[error("{0}")]
    TooLarge(String),
    /// Publishes are arriving faster than the history store commits and its queue is full:
    /// shed now rather than queued without end; retrying after [`HubError::RETRY_AFTER_SECS`]
    /// may succeed.
    #[error("{0}")]
    Overloaded(String),
    /// Something that should not fail did.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unstorable => Self::BadRequest(e.to_string()),
            e => Self::Store(e),
        }
    }
}

impl HubError {
    /// How long an overloaded publisher should wait before retrying (`Retry-After`).
    pub const RETRY_AFTER_SECS: u32 = 1;

    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::Broker(_) | Self::Unavailable(_) | Self::Overloaded(_) => ErrorCode::Unavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Seconds to wait before retrying, for errors that say so (HTTP `Retry-After`).
    pub fn retry_after(&self) -> Option<u32> {
        matches!(self, Self::Overloaded(_)).then_some(Self::RETRY_AFTER_SECS)
    }
}
