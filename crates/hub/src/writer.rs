//! A connection's writer task. It alone owns the socket's sending half: it drains the outbox
//! in batches, sends the pings the reader asks for, and sends the close frame. Keeping it
//! apart from the reader means a delivery wakes only this small loop, never the reader's
//! socket polling or its timers.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use switchboard_protocol::Disconnect;

use crate::outbox::Batch;
use crate::{Outbound, Outbox};

/// Runs until the outbox closes (the close frame is then sent) or the socket fails.
pub(crate) async fn run<W>(outbox: Outbox, mut outbound: W)
where
    W: Sink<Outbound> + Unpin,
{
    loop {
        let sent = match outbox.next_batch().await {
            Batch::Frames(mut frames) => {
                let sent = write(&outbox, &mut outbound, &mut frames).await;
                outbox.recycle(frames);
                sent
            }
            Batch::Ping => send_or_abort(&outbox, &mut outbound, Outbound::Ping).await,
            Batch::Close(disconnect) => return close(&mut outbound, disconnect).await,
        };
        if !sent {
            // The socket is gone: close the outbox so a replay waiting for room stops too.
            outbox.close(Disconnect::new(Disconnect::NORMAL, ""), false);
            return;
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
    // Biased: a write that completes at once never registers for the rare abort signal.
    tokio::select! {
        biased;
        written = write => written.is_ok(),
        _ = outbox.aborted() => true,
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
