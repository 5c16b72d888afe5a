//! A channel's seq order on this node (see `order.rs`): where it starts when the channel
//! gets its first subscriber here, and filling its gaps from history.

use std::sync::Arc;

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

    /// Reads the events of `gap` from the channel's history and delivers them with what waits
    /// behind them, until no gap is left. Runs as its own task: delivery never blocks.
    pub(crate) fn fill_gap(&self, app: Arc<App>, gap: Gap) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut next = Some(gap);
            while let Some(gap) = next.take() {
                let filled = hub.read_gap(&app, &gap).await;
                next = app.registry.fill(&gap.channel, filled, gap.horizon);
            }
        });
    }

    /// The events after `gap.after` up to its horizon that history still has; none when it
    /// cannot be read (the waiting events then go out with the hole, and the log says so).
    async fn read_gap(&self, app: &App, gap: &Gap) -> Vec<Envelope> {
        let Some(spec) = app.spec.history_of(&gap.channel) else { return Vec::new() };
        let limit = (gap.horizon - gap.after).min(u64::from(MAX_HISTORY_LIMIT)) as u32;
        let (store, memory) = (self.shared.store.as_ref(), self.memory());
        match history::read(store, memory, &app.slug, &gap.channel, spec, gap.after, limit).await {
            Ok(page) => page
                .events
                .into_iter()
                .map(|event| Envelope {
                    app: app.slug.clone(),
                    channel: gap.channel.clone(),
                    payload: encode_stored(&app.slug, &gap.channel, Some(&page.epoch), &event),
                    seq: event.seq,
                    published_us: 0,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(channel = %gap.channel, error = %e, "could not fill a gap in a channel's events");
                Vec::new()
            }
        }
    }
}
