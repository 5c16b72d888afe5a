//! The WebSocket layer under every transport: RFC 6455 framing and RFC 7692
//! permessage-deflate (yawc), set up from an endpoint's limits and `compression` settings.
//! Transports see whole messages as [`Frame`]s; pings are answered and closes acknowledged
//! here, and a protocol error closes with its RFC 6455 code before the read fails.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, Stream};
use switchboard_hub::{CompressionSpec, RateLimiter, Verdict};
pub use yawc::close::CloseCode;
pub use yawc::{Frame, OpCode, WebSocketError};

mod offer;

/// The read buffer's size between frames: none. It is allocated when bytes arrive, grows
/// while a frame does (doubling from a few bytes), and is given back with the frame, so an
/// idle connection holds no read buffer (1 KiB each before; docs/BENCHMARKS.md, change 13).
const READ_BUFFER: usize = 0;
/// Bytes of queued frames gathered before a write: a burst of small events leaves in one
/// syscall. The buffer only grows as far as a burst needs, so idle connections do not pay.
const WRITE_BATCH: usize = 64 << 10;
/// Deflate and inflate states kept for reuse. Without context takeover a connection takes
/// one per message and gives it back, so memory follows messages in flight, not connections.
const POOLED_DEFLATES: usize = 64;

/// How many control frames (ping, pong) a client may send: the app's message rate and
/// burst. The layer answers every ping with a pong that waits in the socket's send queue, so
/// without a limit a client that pings and never reads would grow that queue forever.
#[derive(Debug, Clone, Copy)]
pub struct ControlLimit {
    /// Sustained control frames per second.
    pub per_second: u32,
    /// Control frames allowed in a burst above the rate.
    pub burst: u32,
}

/// How an endpoint's sockets are set up, built once per endpoint.
#[derive(Clone)]
pub struct Settings {
    options: yawc::Options,
    control: ControlLimit,
}

impl Settings {
    /// Messages up to `max_message` bytes (after inflating, which stops at that size) are
    /// read; a larger one closes the socket with 1009. With `compression`, clients that offer
    /// permessage-deflate get it. Control frames past `control` end the socket's stream
    /// with [`ReadError::ControlFlood`].
    pub fn new(max_message: usize, compression: Option<&CompressionSpec>, control: ControlLimit) -> Self {
        let mut options = yawc::Options::default()
            .with_utf8()
            .with_limits(max_message.saturating_add(1), max_message.saturating_add(1))
            .with_read_buffer_capacity(READ_BUFFER)
            .with_write_buffer_capacity(0)
            .with_backpressure_boundary(WRITE_BATCH);
        options.compression = compression.map(deflate);
        Self { options, control }
    }

    /// Answers an upgrade request; the socket is ready once the response has been sent.
    pub fn accept(&self, upgrade: Upgrade) -> (Response, Pending) {
        match upgrade.0.upgrade(self.options.clone()) {
            Ok((response, pending)) => (response.into_response(), Pending(Some((pending, self.control)))),
            // Only a failed extension negotiation gets here; the client may retry without it.
            Err(e) => ((StatusCode::BAD_REQUEST, e.to_string()).into_response(), Pending(None)),
        }
    }
}

/// A WebSocket upgrade request, read from the HTTP request: the key, the version (13) and
/// the client's first acceptable permessage-deflate offer. Rejected with 400 otherwise.
pub struct Upgrade(yawc::IncomingUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, StatusCode> {
        offer::narrow(&mut parts.headers);
        yawc::IncomingUpgrade::from_request_parts(parts, state).await.map(Self)
    }
}

/// RFC 7692's parameters from the manifest's. The client's window stays whatever it offers:
/// a response may only name `client_max_window_bits` when the offer did.
fn deflate(spec: &CompressionSpec) -> yawc::DeflateOptions {
    yawc::DeflateOptions {
        level: yawc::CompressionLevel::new(spec.level),
        server_max_window_bits: Some(spec.window_bits),
        client_max_window_bits: None,
        server_no_context_takeover: !spec.server_context_takeover,
        client_no_context_takeover: !spec.client_context_takeover,
        compression_threshold: spec.min_bytes,
        pool: Some(yawc::DeflatePool::new(POOLED_DEFLATES)),
    }
}

/// A socket still waiting for the HTTP response to go out.
pub struct Pending(Option<(yawc::UpgradeFut, ControlLimit)>);

impl Pending {
    /// The socket, or `None` if the client left before the switch completed.
    pub async fn socket(self) -> Option<Socket> {
        let (upgrade, control) = self.0?;
        let limiter = RateLimiter::new(control.per_second, control.burst);
        Some(Socket { ws: upgrade.await.ok()?, control: limiter, flooded: false })
    }
}

/// Why a socket's stream ended.
#[derive(Debug)]
pub enum ReadError {
    /// The client broke RFC 6455 or RFC 7692, or the connection failed.
    Protocol(WebSocketError),
    /// The client kept sending control frames over the limit; nothing more is read.
    ControlFlood,
}

/// An upgraded connection: a stream of whole messages, each read failure included once
/// (the stream ends after it), and a sink of frames.
pub struct Socket {
    ws: yawc::HttpWebSocket,
    /// Control frames are counted here: a client that pings faster than its limit allows
    /// is refused before the pongs it is owed can pile up.
    control: RateLimiter,
    flooded: bool,
}

impl Stream for Socket {
    type Item = Result<Frame, ReadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.flooded {
            return Poll::Ready(None);
        }
        let frame = match this.ws.poll_next_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(WebSocketError::ConnectionClosed)) => return Poll::Ready(None),
            Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(ReadError::Protocol(e)))),
            Poll::Ready(Ok(frame)) => frame,
        };
        match frame.opcode() {
            // A control frame carries at most 125 bytes (RFC 6455 section 5.5); yawc 0.5 lets
            // an over-long close through and queues a normal close in reply. Failing here
            // drops the connection before that reply is flushed, as the RFC asks.
            OpCode::Close if frame.payload().len() > 125 => {
                Poll::Ready(Some(Err(ReadError::Protocol(WebSocketError::InvalidCloseFrame))))
            }
            OpCode::Ping | OpCode::Pong if this.control.check() == Verdict::Close => {
                this.flooded = true;
                Poll::Ready(Some(Err(ReadError::ControlFlood)))
            }
            _ => Poll::Ready(Some(Ok(frame))),
        }
    }
}

impl Sink<Frame> for Socket {
    type Error = WebSocketError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().ws).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Self::Error> {
        Pin::new(&mut self.get_mut().ws).start_send(frame)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().ws).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().ws).poll_close(cx)
    }
}
