//! The diagnostic echo endpoint: the same WebSocket stack and limits as the native one,
//! echoing every message, so the RFC 6455 conformance suite can test that stack.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tungstenite::error::CapacityError;

/// Echoes text and binary messages until the client closes.
pub(crate) async fn serve(mut socket: WebSocket) {
    while let Some(message) = socket.recv().await {
        let reply = match message {
            Ok(Message::Text(text)) => Message::Text(text),
            Ok(Message::Binary(data)) => Message::Binary(data),
            // Keep reading after a close: the next read flushes tungstenite's close reply.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_)) => continue,
            Err(e) => {
                let code = close_code(&e);
                let frame = CloseFrame { code, reason: "protocol error".into() };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

fn tungstenite_error(e: &axum::Error) -> Option<&tungstenite::Error> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>())
}

/// Whether a read failed because a message or frame exceeded the size limit.
pub(crate) fn is_capacity(e: &axum::Error) -> bool {
    matches!(tungstenite_error(e), Some(tungstenite::Error::Capacity(_)))
}

/// RFC 6455 close codes for read failures: 1007 bad UTF-8, 1009 too big, 1002 otherwise.
fn close_code(e: &axum::Error) -> u16 {
    match tungstenite_error(e) {
        Some(tungstenite::Error::Utf8(_)) => 1007,
        Some(tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. })) => 1009,
        _ => 1002,
    }
}
