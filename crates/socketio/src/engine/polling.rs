//! HTTP long-polling: the client's GET waits for packets, its POST carries packets. One of
//! each may be under way per session; a POST's body is read only for a live session, within
//! `maxPayload` and the ping timeout (a client that trickles it is cut off), and its packets
//! are handed on one at a time.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;

use super::packet::{Packet, SEPARATOR};
use super::socket::{End, EngineSocket, Transport};
use super::{text, EngineError};

/// A long-poll: waits for packets; a noop when the session moved to WebSocket.
pub(crate) async fn poll(socket: Arc<EngineSocket>) -> Response {
    let Some(_guard) = socket.begin_poll() else {
        socket.close();
        return EngineError::BadRequest.response("Bad request: overlapping polls");
    };
    let batch = socket.next_batch(Transport::Polling).await;
    if !batch.is_empty() {
        return text(Packet::encode_polling(&batch));
    }
    // Nothing to send: the upgrade began, the client closed (it gets a noop, as it asked
    // for the end), or the server ended the session (a close packet).
    let last = match socket.ended() {
        Some(End::ByClient) => {
            socket.end_told();
            Packet::Noop
        }
        Some(End::ByServer | End::SlowConsumer) => Packet::Close,
        None => Packet::Noop,
    };
    text(last.encode())
}

/// Packets from the client; the answer waits until the Socket.IO layer took them.
pub(crate) async fn post(socket: Arc<EngineSocket>, body: Body) -> Response {
    let Some(_guard) = socket.begin_post() else {
        socket.close();
        return EngineError::BadRequest.response("Bad request: overlapping posts");
    };
    let body = match tokio::time::timeout(socket.timing.ping_timeout, read_body(body, socket.timing.max_payload)).await
    {
        Ok(Ok(body)) => body,
        Ok(Err(Unread::TooLarge)) => {
            socket.close();
            return (StatusCode::PAYLOAD_TOO_LARGE, "payload over maxPayload").into_response();
        }
        // The client went away mid-body: there is no one to answer.
        Ok(Err(Unread::Aborted)) => return StatusCode::BAD_REQUEST.into_response(),
        Err(_) => {
            socket.close();
            return (StatusCode::REQUEST_TIMEOUT, "the payload did not arrive in time").into_response();
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else { return malformed(&socket) };
    // One packet at a time, each handed on before the next is decoded.
    for part in text.split(SEPARATOR) {
        match Packet::decode(part) {
            Ok(packet) => socket.received(packet).await,
            Err(_) => return malformed(&socket),
        }
    }
    ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
}

fn malformed(socket: &EngineSocket) -> Response {
    socket.close();
    EngineError::BadRequest.response("Bad request: malformed payload")
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    Aborted,
}

/// The body, up to `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<BytesMut, Unread> {
    let mut stream = body.into_data_stream();
    let mut read = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Unread::Aborted)?;
        if read.len() + chunk.len() > limit {
            return Err(Unread::TooLarge);
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}
