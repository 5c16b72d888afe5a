//! Engine.IO over WebSocket: each frame one packet, binary frames raw.

use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_transport::websocket::{CloseCode, Frame, OpCode, Socket};

use super::packet::Packet;
use super::socket::{EngineSocket, Transport};

/// A session that starts on WebSocket: the handshake is its first frame.
pub(crate) async fn direct(session: Arc<EngineSocket>, ws: Socket) {
    let (mut sink, stream) = ws.split();
    if sink.send(Frame::text(session.open_packet(false).encode())).await.is_err() {
        return session.close();
    }
    run(session, sink, stream).await;
}

/// A polling session moving to WebSocket: `2probe` is answered with `3probe`, and `5`
/// completes the switch (the pending poll then ends with a noop).
pub(crate) async fn upgrade(session: Arc<EngineSocket>, ws: Socket) {
    let (mut sink, mut stream) = ws.split();
    loop {
        let packet = match stream.next().await {
            Some(Ok(frame)) if frame.opcode() == OpCode::Text => Packet::decode(frame.as_str()),
            Some(Ok(frame)) if matches!(frame.opcode(), OpCode::Ping | OpCode::Pong) => continue,
            _ => return, // the client gave up the upgrade; polling goes on
        };
        match packet {
            Ok(Packet::Ping(probe)) if probe == "probe" => {
                if sink.send(Frame::text(Packet::Pong(probe).encode())).await.is_err() {
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

async fn run(session: Arc<EngineSocket>, sink: SplitSink<Socket, Frame>, mut stream: SplitStream<Socket>) {
    let writer = tokio::spawn(write(session.clone(), sink));
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = session.closed().cancelled() => break,
        };
        let Some(Ok(frame)) = message else { break };
        let packet = match frame.opcode() {
            OpCode::Text => Packet::decode(frame.as_str()),
            OpCode::Binary => Ok(Packet::Binary(frame.into_payload())),
            OpCode::Ping | OpCode::Pong => continue,
            OpCode::Close | OpCode::Continuation => break,
        };
        match packet {
            Ok(packet) => session.received(packet),
            Err(_) => break,
        }
    }
    session.close();
    let _ = writer.await;
}

async fn write(session: Arc<EngineSocket>, mut sink: SplitSink<Socket, Frame>) {
    loop {
        let batch = session.next_batch(Transport::WebSocket).await;
        if batch.is_empty() {
            break; // closed
        }
        for packet in batch {
            let frame = match packet {
                Packet::Binary(bytes) => Frame::binary(bytes),
                other => Frame::text(other.encode()),
            };
            if sink.feed(frame).await.is_err() {
                return session.close();
            }
        }
        if sink.flush().await.is_err() {
            return session.close();
        }
    }
    let _ = sink.send(Frame::close(CloseCode::Normal, [])).await;
}
