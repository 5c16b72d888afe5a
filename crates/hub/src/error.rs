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
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Broker(_) | Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}
