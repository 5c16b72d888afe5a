//! Filling a gap in a channel's seqs from history (see `order.rs`).

use std::sync::Arc;

use switchboard_broker::Envelope;

use super::Hub;
use crate::history::{self, encode_stored};
use crate::{App, Gap, MAX_HISTORY_LIMIT};

impl Hub {
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
