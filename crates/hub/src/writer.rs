//! A connection's writer task. It alone owns the socket's sending half: it drains the outbox
//! in batches, sends protocol pings, and sends the close frame. Keeping it apart from the
//! reader means a delivery wakes only this small loop, never the reader's socket polling.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use switchboard_protocol::Disconnect;
use tokio::time::Instant;

use crate::outbox::Batch;
use crate::{Outbound, Outbox};

/// Pings sent since the client last sent anything; the reader resets it.
pub(crate) type Unanswered = Arc<AtomicU8>;

/// Runs until the outbox closes (the close frame is then sent), the socket fails, or the
/// peer leaves two pings unanswered.
pub(crate) async fn run<W>(outbox: Outbox, mut outbound: W, ping_interval: Duration, unanswered: Unanswered)
where
    W: Sink<Outbound> + Unpin,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            batch = outbox.next_batch() => match batch {
                Batch::Frames(mut frames) => {
                    if !write(&outbox, &mut outbound, &mut frames).await {
                        return;
                    }
                    outbox.recycle(frames);
                }
                Batch::Close(disconnect) => return close(&mut outbound, disconnect).await,
            },
            _ = ping.tick() => {
                if unanswered.fetch_add(1, Ordering::Relaxed) >= 2 {
                    tracing::debug!("dropping dead peer: two pings unanswered");
                    return;
                }
                if !send_or_abort(&outbox, &mut outbound, Outbound::Ping).await {
                    return;
                }
            }
        }
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

/// Writes a batch, then flushes once; gives up when the outbox is aborted (overflow, kick).
/// Returns `false` when the socket is gone.
async fn write<W: Sink<Outbound> + Unpin>(outbox: &Outbox, outbound: &mut W, frames: &mut VecDeque<Bytes>) -> bool {
    let write = async {
        for frame in frames.drain(..) {
            outbound.feed(Outbound::Text(frame)).await.map_err(|_| ())?;
        }
        outbound.flush().await.map_err(|_| ())
    };
    tokio::select! {
        written = write => written.is_ok(),
        _ = outbox.aborted() => true,
    }
}

/// Sends one frame unless the outbox is aborted first: a socket whose buffers are full must
/// not keep the connection from closing. Returns `false` when the socket is gone.
async fn send_or_abort<W: Sink<Outbound> + Unpin>(outbox: &Outbox, outbound: &mut W, frame: Outbound) -> bool {
    tokio::select! {
        sent = outbound.send(frame) => sent.is_ok(),
        _ = outbox.aborted() => true,
    }
}
