//! What can go wrong in chat, and how each side reports it. Over the socket every failure
//! of a chat message is a `chat:error` frame carrying the message's `tempId`.

use serde_json::{Map, Value};
use switchboard_hub::{HubError, Refusal};
use switchboard_protocol::ErrorCode;
use switchboard_store::StoreError;

/// Why a chat or presence operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Malformed input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// Not a participant, or not the author.
    #[error("{0}")]
    Forbidden(String),
    /// No such conversation or message.
    #[error("{0}")]
    NotFound(String),
    /// The store or the hub failed.
    #[error(transparent)]
    Hub(#[from] HubError),
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        Self::Hub(e.into())
    }
}

impl ChatError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Hub(e) => e.code(),
        }
    }

    /// The socket's answer: `chat:error {code, message, tempId}`.
    pub fn refusal(self, data: &Value) -> Refusal {
        let code = self.code();
        let message = match self {
            // Overloaded is expected under load (and counted); the client may retry it.
            Self::Hub(HubError::BadRequest(message) | HubError::TooLarge(message) | HubError::Overloaded(message)) => {
                message
            }
            Self::Hub(inner) => {
                // Details stay in the log; the client learns only that it may retry.
                tracing::error!(error = %inner, "chat request failed");
                "internal error; retry later".to_owned()
            }
            other => other.to_string(),
        };
        chat_error(Refusal::new(code, message), data)
    }
}

/// `refusal` as a `chat:error` frame, with the `tempId` of the message it answers.
pub(crate) fn chat_error(refusal: Refusal, data: &Value) -> Refusal {
    let mut extra = Map::new();
    if let Some(temp) = data.get("tempId").filter(|t| t.is_string()) {
        extra.insert("tempId".into(), temp.clone());
    }
    refusal.framed("chat:error", extra)
}
