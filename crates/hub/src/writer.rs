//! A connection's writer task. It alone owns the socket's sending half: it drains the outbox
//! in batches, sends the pings the reader asks for, and sends the close frame. Keeping it
//! apart from the reader means a delivery wakes only this small loop, never the reader's
//! socket polling or its timers.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use switchboard_protocol::Disconnect;

use crate::outbox::Batch;
use crate::{Outbound, Outbox};

/// Runs until the outbox closes (the close frame is then sent) or the socket fails.
///
/// Its state lives as long as the connection and is as large as its largest await, so the
/// rare awaits (a ping, the close) are boxed, and it is an `async move` block rather than an
/// `async fn`, which would keep its arguments twice (see `Session::live`): 391 bytes of state
/// became 256, and tokio's cell for the task (128-byte aligned) 512 bytes became 384.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`, as said above
pub(crate) fn run<W>(outbox: Outbox, mut outbound: W) -> impl Future<Output = ()>
where
    W: Sink<Outbound> + Unpin,
{
    async move {
        loop {
            // The batch is moved whole into one arm or the other, and the write is awaited
            // after the match: a batch left behind would be kept in the task's state.
            let frames = match outbox.next_batch().await {
                Batch::Frames(frames) => frames,
                other => match Box::pin(ping_or_close(&outbox, &mut outbound, other)).await {
                    Some(true) => continue,
                    Some(false) => return gone(&outbox),
                    None => return, // closed
                },
            };
            if !write(&outbox, &mut outbound, frames).await {
                return gone(&outbox);
            }
        }
    }
}

/// The socket is gone: the outbox is closed, so that a replay waiting for room stops too.
fn gone(outbox: &Outbox) {
    outbox.close(Disconnect::new(Disconnect::NORMAL, ""), false);
}

/// A ping (whether it was sent), or the close (`None`, once sent).
async fn ping_or_close<W: Sink<Outbound> + Unpin>(outbox: &Outbox, outbound: &mut W, batch: Batch) -> Option<bool> {
    match batch {
        Batch::Close(disconnect) => {
            close(outbound, disconnect).await;
            None
        }
        _ => Some(send_or_abort(outbox, outbound, Outbound::Ping).await),
    }
}

/// Sends the close frame, then flushes whatever close reply the protocol still owes.
pub(crate) async fn close<W: Sink<Outbound> + Unpin>(outbound: &mut W, disconnect: Disconnect) {
    // The peer may already be gone; a failed close changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if disconnect.code != Disconnect::NORMAL {
            let _ = outbound.send(Outbound::Close(disconnect)).await;
        }
        let _ = outbound.close().await;
    })
    .await;
}

/// Writes a batch, then flushes once, and hands the emptied queue back to the outbox; gives
/// up when the outbox is aborted (overflow, kick). Returns `false` when the socket is gone.
#[allow(clippy::manual_async_fn)] // see `run`
fn write<'a, W: Sink<Outbound> + Unpin>(
    outbox: &'a Outbox,
    outbound: &'a mut W,
    mut frames: VecDeque<Bytes>,
) -> impl Future<Output = bool> + 'a {
    async move {
        // Frames are taken one at a time, not through an iterator, which would sit in the
        // task's state beside the frame it yielded (72 bytes of every connection).
        let write = async {
            loop {
                let Some(frame) = frames.pop_front() else { break };
                outbound.feed(Outbound::Text(frame)).await.map_err(|_| ())?;
            }
            outbound.flush().await.map_err(|_| ())
        };
        // Biased: a write that completes at once never registers for the rare abort signal.
        let sent = tokio::select! {
            biased;
            written = write => written.is_ok(),
            _ = outbox.aborted() => true,
        };
        outbox.recycle(frames);
        sent
    }
}

/// Sends one frame unless the outbox is aborted first: a socket whose buffers are full must
/// not keep the connection from closing. Returns `false` when the socket is gone.
async fn send_or_abort<W: Sink<Outbound> + Unpin>(outbox: &Outbox, outbound: &mut W, frame: Outbound) -> bool {
    tokio::select! {
        biased;
        sent = outbound.send(frame) => sent.is_ok(),
        _ = outbox.aborted() => true,
    }
}
