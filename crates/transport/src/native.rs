//! The native protocol over the WebSocket layer: frame conversion only.

use std::sync::Arc;

use futures_util::{future, SinkExt, StreamExt};
use switchboard_hub::{session, App, EndpointSpec, Handshake, Hub, Inbound, Outbound};
use switchboard_protocol::Disconnect;

use crate::websocket::{CloseCode, Frame, OpCode, ReadError, Socket, WebSocketError};

/// Runs one native session on an upgraded socket.
pub(crate) async fn serve(hub: Hub, app: Arc<App>, endpoint: Arc<EndpointSpec>, handshake: Handshake, socket: Socket) {
    let (sink, stream) = socket.split();
    let inbound = stream.map(inbound);
    let outbound = sink.with(|frame| future::ready(Ok::<_, WebSocketError>(outbound(frame))));
    session::run(hub, app, endpoint, handshake, inbound, Box::pin(outbound)).await;
}

fn inbound(message: Result<Frame, ReadError>) -> Inbound {
    let frame = match message {
        Ok(frame) => frame,
        Err(ReadError::Protocol(WebSocketError::FrameTooLarge)) => return Inbound::TooBig,
        Err(ReadError::Protocol(e)) => return broken(e),
        Err(ReadError::ControlFlood) => {
            let reason = "too many pings or pongs: control frames count against the rate limit";
            return Inbound::Broken(Disconnect::new(Disconnect::RATE_LIMITED, reason));
        }
    };
    match frame.opcode() {
        // The layer checked it is UTF-8.
        OpCode::Text => Inbound::Text(String::from_utf8_lossy(frame.payload()).into_owned()),
        OpCode::Binary => Inbound::Binary,
        // A client's ping proves it alive as much as a pong does; the layer answers it.
        OpCode::Ping | OpCode::Pong => Inbound::Pong,
        OpCode::Close | OpCode::Continuation => Inbound::Closed,
    }
}

/// What a failed read means for the client: RFC 6455's close code for the fault, with the
/// fault as the reason. A broken socket gets a close frame it will never read.
fn broken(e: WebSocketError) -> Inbound {
    let code = match &e {
        // The inflater reports a stream that is not deflate as invalid input.
        WebSocketError::IoError(io) if io.kind() == std::io::ErrorKind::InvalidInput => 1007,
        WebSocketError::IoError(_) => return Inbound::Closed,
        WebSocketError::InvalidUTF8 => 1007,
        _ => 1002,
    };
    Inbound::Broken(Disconnect::new(code, format!("protocol error: {e}")))
}

fn outbound(frame: Outbound) -> Frame {
    match frame {
        Outbound::Text(bytes) => Frame::text(bytes),
        Outbound::Ping => Frame::ping(bytes::Bytes::new()),
        Outbound::Close(d) => Frame::close(CloseCode::from(d.code), d.reason.as_bytes()),
    }
}
