//! Committed events the broker did not take (its server did not confirm them: a partition,
//! a restart). They are durable, so the publish is acknowledged and other nodes would fill
//! them from the store at their next event; but a channel whose next event never comes would
//! wait for them. So they are kept here and published again, in order, once the broker is
//! healthy; a node that got them already drops the copies by seq.
//!
//! Bounded: past [`MAX_UNSENT`] events or [`MAX_UNSENT_BYTES`] the oldest go, and other nodes
//! then get them from the store at the channel's next event, as before.

use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use switchboard_broker::Envelope;

use super::Parts;

const MAX_UNSENT: usize = 4096;
const MAX_UNSENT_BYTES: usize = 16 << 20;
/// How often the kept events are offered to the broker again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Unsent {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    events: VecDeque<Envelope>,
    bytes: usize,
    /// Whether the oldest were let go since the last warning.
    overflowed: bool,
}

impl Unsent {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `envelope` to publish again.
    pub(crate) fn keep(&self, envelope: Envelope) {
        let mut kept = self.kept();
        kept.bytes += envelope.payload.len();
        kept.events.push_back(envelope);
        while kept.events.len() > MAX_UNSENT || kept.bytes > MAX_UNSENT_BYTES {
            let Some(oldest) = kept.events.pop_front() else { break };
            kept.bytes -= oldest.payload.len();
            if !std::mem::replace(&mut kept.overflowed, true) {
                tracing::warn!(
                    "too many committed events wait for the broker; the oldest are let go (other nodes read them \
                     from the store at their channel's next event)"
                );
            }
        }
    }

    /// Puts `rest` back in front, in order.
    fn put_back(&self, rest: impl DoubleEndedIterator<Item = Envelope>) {
        let mut kept = self.kept();
        for envelope in rest.rev() {
            kept.bytes += envelope.payload.len();
            kept.events.push_front(envelope);
        }
    }

    fn take(&self) -> Vec<Envelope> {
        let mut kept = self.kept();
        (kept.bytes, kept.overflowed) = (0, false);
        kept.events.drain(..).collect()
    }
}

/// Offers the kept events to the broker every [`RETRY_EVERY`] while it is healthy, until the
/// sequencer is gone.
pub(super) async fn retry(parts: Weak<Parts>) {
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        let Some(parts) = parts.upgrade() else { return };
        if parts.broker.health().is_err() {
            continue;
        }
        let mut events = parts.unsent.take().into_iter();
        let mut sent = 0usize;
        while let Some(envelope) = events.next() {
            if parts.broker.publish(envelope.clone()).await.is_err() {
                parts.unsent.put_back(std::iter::once(envelope).chain(events));
                break;
            }
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(events = sent, "published again the committed events the broker had not taken");
        }
    }
}
