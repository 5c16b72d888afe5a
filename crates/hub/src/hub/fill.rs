//! A channel's seq order on this node (see `order.rs`): where it starts when the channel
//! gets its first subscriber here, and filling its gaps from history.

use std::sync::Arc;
use std::time::Duration;

use switchboard_broker::Envelope;

use super::Hub;
use crate::history::{self, encode_stored};
use crate::{App, ConnId, Gap, MAX_HISTORY_LIMIT};

impl Hub {
    /// Subscribes a connection to `channel` (nothing, when the connection is gone). The first
    /// subscriber on this node reads the channel's head before the broker subscription, so
    /// that every event committed after it reaches the channel's subscribers.
    pub(crate) async fn subscribe(&self, app: &App, id: ConnId, channel: &str) {
        let head = match app.registry.has_subscribers(channel) {
            true => None,
            false => self.head(app, channel).await,
        };
        app.registry.subscribe(id, channel, head);
    }

    /// The seq of the newest event of `channel`, when it keeps history and the read works.
    /// `None` on a single node: its sequencer hands events to the broker in seq order, so the
    /// first to arrive is where the order starts, and connecting costs no store read.
    pub(crate) async fn head(&self, app: &App, channel: &str) -> Option<u64> {
        if self.shared.broker.alone() {
            return None;
        }
        let spec = app.spec.history_of(channel)?;
        match history::head(self.shared.store.as_ref(), self.memory(), &app.slug, channel, spec).await {
            Ok(head) => Some(head),
            Err(e) => {
                // The order then starts at the first event to arrive, as it did before heads.
                tracing::warn!(channel, error = %e, "could not read a channel's head");
                None
            }
        }
    }

    /// Reads the events of `gap` from the channel's history, a page at a time, and delivers
    /// them with what waits behind them, until no gap is left. A read that fails is tried
    /// again (the events wait, within their bound): a hole is never skipped for a store
    /// that is down for a moment. Runs as its own task: delivery never blocks.
    pub(crate) fn fill_gap(&self, app: Arc<App>, gap: Gap) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut next = Some(gap);
            while let Some(gap) = next.take() {
                let Some((filled, read_to)) = hub.read_gap(&app, &gap).await else { return };
                next = app.registry.fill(&gap, filled, read_to);
            }
        });
    }

    /// One page of the events after `gap.after` up to its horizon that history still has,
    /// and how far it read (the horizon, or the last seq of a full page). `None` when the
    /// channel has no subscribers here any more, or keeps no history.
    async fn read_gap(&self, app: &App, gap: &Gap) -> Option<(Vec<Envelope>, u64)> {
        let spec = app.spec.history_of(&gap.channel)?;
        let limit = (gap.horizon - gap.after).min(u64::from(MAX_HISTORY_LIMIT)) as u32;
        let (store, memory) = (self.shared.store.as_ref(), self.memory());
        let mut pause = FILL_RETRY;
        let page = loop {
            match history::read(store, memory, &app.slug, &gap.channel, spec, gap.after, limit).await {
                Ok(page) => break page,
                Err(e) if app.registry.has_subscribers(&gap.channel) => {
                    tracing::warn!(channel = %gap.channel, error = %e, "could not fill a gap in a channel's events; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(FILL_RETRY_MAX);
                }
                Err(_) => return None,
            }
        };
        let full = page.events.len() as u64 >= u64::from(limit);
        let read_to = match (full, page.events.last()) {
            (true, Some(last)) => last.seq.min(gap.horizon),
            _ => gap.horizon,
        };
        let events = page
            .events
            .into_iter()
            .map(|event| Envelope {
                app: app.slug.clone(),
                channel: gap.channel.clone(),
                payload: encode_stored(&app.slug, &gap.channel, Some(&page.epoch), &event),
                seq: event.seq,
                published_us: 0,
            })
            .collect();
        Some((events, read_to))
    }
}

/// The first pause before a failed gap read is tried again, and the longest.
const FILL_RETRY: Duration = Duration::from_millis(100);
const FILL_RETRY_MAX: Duration = Duration::from_secs(2);
