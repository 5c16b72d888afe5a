//! Engine.IO over WebSocket: each frame one packet, binary frames raw.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_transport::websocket::{CloseCode, Frame, OpCode, Socket};

use super::packet::Packet;
use super::socket::{EngineSocket, Transport};

/// How long a WebSocket that asked to take over a polling session has to finish the switch
/// (`2probe`, then `5`): Engine.IO's own `upgradeTimeout`, or the ping interval if shorter
/// (a client probes as soon as its socket opens).
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the last packets and the close frame may take to leave at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A session that starts on WebSocket: the handshake is its first frame.
pub(crate) async fn direct(session: Arc<EngineSocket>, ws: Socket) {
    let (mut sink, stream) = ws.split();
    if sink.send(Frame::text(session.open_packet(false).encode())).await.is_err() {
        return session.close();
    }
    run(session, sink, stream).await;
}

/// A polling session moving to WebSocket: `2probe` is answered with `3probe` (and a pending
/// poll with a noop), and `5` completes the switch. A socket that does not finish in time,
/// or says anything else, is dropped, and polling goes on.
pub(crate) async fn upgrade(session: Arc<EngineSocket>, ws: Socket) {
    let (mut sink, mut stream) = ws.split();
    let limit = UPGRADE_TIMEOUT.min(session.timing.ping_interval);
    let switched = tokio::time::timeout(limit, probe(&session, &mut sink, &mut stream)).await;
    if switched != Ok(true) {
        tracing::debug!(sid = %session.sid, "an upgrade did not complete; polling goes on");
        session.upgrade_abandoned();
        let close = sink.send(Frame::close(CloseCode::Policy, "upgrade not completed"));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        return;
    }
    session.upgraded();
    run(session, sink, stream).await;
}

/// Closes a socket that may not join its session (1008, policy).
pub(crate) async fn refuse(mut ws: Socket, reason: &'static str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Frame::close(CloseCode::Policy, reason))).await;
}

/// The probe exchange; whether it ended with the client's `5`.
async fn probe(session: &EngineSocket, sink: &mut SplitSink<Socket, Frame>, stream: &mut SplitStream<Socket>) -> bool {
    let mut probed = false;
    loop {
        let packet = match stream.next().await {
            Some(Ok(frame)) if frame.opcode() == OpCode::Text => Packet::decode(frame.as_str()),
            Some(Ok(frame)) if matches!(frame.opcode(), OpCode::Ping | OpCode::Pong) => continue,
            _ => return false, // the client gave up the upgrade
        };
        match packet {
            // One probe: a client that keeps probing is not upgrading.
            Ok(Packet::Ping(probe)) if probe == "probe" && !std::mem::replace(&mut probed, true) => {
                if sink.send(Frame::text(Packet::Pong(probe).encode())).await.is_err() {
                    return false;
                }
                session.probed();
            }
            Ok(Packet::Upgrade) => return true,
            _ => return false,
        }
    }
}

async fn run(session: Arc<EngineSocket>, sink: SplitSink<Socket, Frame>, mut stream: SplitStream<Socket>) {
    let writer = tokio::spawn(write(session.clone(), sink));
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            _ = session.closed().cancelled() => break,
        };
        // A read error (a protocol fault, or control frames over the limit) ends the session.
        let Some(Ok(frame)) = message else { break };
        let packet = match frame.opcode() {
            OpCode::Text => Packet::decode(frame.as_str()),
            OpCode::Binary => Ok(Packet::Binary(frame.into_payload())),
            OpCode::Ping | OpCode::Pong => continue,
            OpCode::Close | OpCode::Continuation => break,
        };
        match packet {
            // Waits while the Socket.IO layer is behind: the socket is not read meanwhile.
            Ok(packet) => session.received(packet).await,
            Err(_) => break,
        }
    }
    session.close();
    // The writer sends what was queued before the end, unless the client stopped reading.
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_TIMEOUT, writer).await.is_err() {
        abort.abort();
    }
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
                Packet::Encoded(bytes) => Frame::text(bytes),
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
