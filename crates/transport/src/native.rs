//! The native protocol over axum's WebSocket: frame conversion only.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{future, SinkExt, StreamExt};
use switchboard_hub::{session, App, EndpointSpec, Handshake, Hub, Inbound, Outbound};

/// Runs one native session on an upgraded socket.
pub(crate) async fn serve(
    hub: Hub,
    app: Arc<App>,
    endpoint: Arc<EndpointSpec>,
    handshake: Handshake,
    socket: WebSocket,
) {
    let (sink, stream) = socket.split();
    let inbound = stream.map(inbound);
    let outbound = sink.with(|frame| future::ready(Ok::<_, axum::Error>(outbound(frame))));
    session::run(hub, app, endpoint, handshake, inbound, Box::pin(outbound)).await;
}

fn inbound(message: Result<Message, axum::Error>) -> Inbound {
    match message {
        Ok(Message::Text(text)) => Inbound::Text(text.as_str().to_owned()),
        Ok(Message::Binary(_)) => Inbound::Binary,
        // A client's ping proves it alive as much as a pong does; tungstenite answers it.
        Ok(Message::Pong(_) | Message::Ping(_)) => Inbound::Pong,
        Ok(Message::Close(_)) => Inbound::Closed,
        Err(e) if crate::echo::is_capacity(&e) => Inbound::TooBig,
        Err(_) => Inbound::Closed,
    }
}

pub(crate) fn outbound(frame: Outbound) -> Message {
    match frame {
        // The hub only queues JSON it encoded itself, which is UTF-8.
        Outbound::Text(bytes) => Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default()),
        Outbound::Ping => Message::Ping(Default::default()),
        Outbound::Close(d) => Message::Close(Some(CloseFrame { code: d.code, reason: d.reason.as_ref().into() })),
    }
}
