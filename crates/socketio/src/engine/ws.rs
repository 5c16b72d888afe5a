//! Engine.IO over WebSocket: each frame one packet, binary frames raw.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};

use super::packet::Packet;
use super::socket::{EngineSocket, Transport};

/// A session that starts on WebSocket: the handshake is its first frame.
pub(crate) async fn direct(session: Arc<EngineSocket>, ws: WebSocket) {
    let (mut sink, stream) = ws.split();
    if sink.send(Message::Text(session.open_packet(false).encode().into())).await.is_err() {
        return session.close();
    }
    run(session, sink, stream).await;
}

/// A polling session moving to WebSocket: `2probe` is answered with `3probe`, and `5`
/// completes the switch (the pending poll then ends with a noop).
pub(crate) async fn upgrade(session: Arc<EngineSocket>, ws: WebSocket) {
    let (mut sink, mut stream) = ws.split();
    loop {
        let packet = match stream.next().await {
            Some(Ok(Message::Text(text))) => Packet::decode(text.as_str()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return, // the client gave up the upgrade; polling goes on
        };
        match packet {
            Ok(Packet::Ping(probe)) if probe == "probe" => {
                if sink.send(Message::Text(Packet::Pong(probe).encode().into())).await.is_err() {
                    return;
                }
            }
            Ok(Packet::Upgrade) => break,
            _ => return session.close(),
        }
    }
    session.upgraded();
    run(session, sink, stream).await;
}

async fn run(
    session: Arc<EngineSocket>,
    sink: SplitSink<WebSocket, Message>,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
) {
    let writer = tokio::spawn(write(session.clone(), sink));
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = session.closed().cancelled() => break,
        };
        let packet = match message {
            Some(Ok(Message::Text(text))) => Packet::decode(text.as_str()),
            Some(Ok(Message::Binary(bytes))) => Ok(Packet::Binary(bytes)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => break,
        };
        match packet {
            Ok(packet) => session.received(packet),
            Err(_) => break,
        }
    }
    session.close();
    let _ = writer.await;
}

async fn write(session: Arc<EngineSocket>, mut sink: SplitSink<WebSocket, Message>) {
    loop {
        let batch = session.next_batch(Transport::WebSocket).await;
        if batch.is_empty() {
            break; // closed
        }
        for packet in batch {
            let message = match packet {
                Packet::Binary(bytes) => Message::Binary(bytes),
                other => Message::Text(other.encode().into()),
            };
            if sink.feed(message).await.is_err() {
                return session.close();
            }
        }
        if sink.flush().await.is_err() {
            return session.close();
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}
