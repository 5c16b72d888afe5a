//! The diagnostic echo endpoint: the same WebSocket layer and limits as the native one,
//! echoing every message, so the RFC 6455 and RFC 7692 conformance suites can test it.

use futures_util::{SinkExt, StreamExt};

use crate::websocket::{Frame, OpCode, Socket};

/// Echoes text and binary messages until the client closes. A protocol error ends the
/// loop after the layer has sent its close code (1002, 1007 or 1009); so does a flood of
/// control frames.
pub(crate) async fn serve(mut socket: Socket) {
    while let Some(Ok(frame)) = socket.next().await {
        let reply = match frame.opcode() {
            OpCode::Text => Frame::text(frame.into_payload()),
            OpCode::Binary => Frame::binary(frame.into_payload()),
            // Keep reading after a close: the next read flushes the close reply.
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}
