//! What can go wrong in an inbox operation, and how each side reports it.

use switchboard_hub::{HubError, Refusal};
use switchboard_protocol::ErrorCode;
use switchboard_store::StoreError;

/// Why an inbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Malformed input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// No such notification or alert for this user (another user's is never revealed).
    #[error("{0}")]
    NotFound(String),
    /// A group the user is not a member of, or an anonymous caller.
    #[error("{0}")]
    Forbidden(String),
    /// The store or the hub failed.
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl From<StoreError> for InboxError {
    fn from(e: StoreError) -> Self {
        Self::Hub(e.into())
    }
}

impl InboxError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Hub(e) => e.code(),
        }
    }
}

impl From<InboxError> for Refusal {
    fn from(e: InboxError) -> Self {
        let code = e.code();
        match e {
            InboxError::Hub(HubError::BadRequest(message)) => Refusal::new(code, message),
            InboxError::Hub(inner) => {
                // Details stay in the log; the client learns only that it may retry.
                tracing::error!(error = %inner, "inbox request failed");
                Refusal::new(code, "internal error; retry later")
            }
            other => Refusal::new(code, other.to_string()),
        }
    }
}
