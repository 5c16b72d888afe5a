//! After the broker connection was lost and is back, what this node missed meanwhile:
//! - events of channels with history: each channel with subscribers here reads its head,
//!   and the events between what it delivered and the head are filled from history (a
//!   channel whose next event never comes would otherwise wait for it);
//! - control messages: a disconnect, a new or removed membership asked while this node was
//!   cut off. Every node records these in the store's control log before sending them, and
//!   a node that was cut off replays the log since it last knew it was connected (less
//!   [`REPLAY_MARGIN`]), so the ask reaches it late instead of never.
//!
//! Replays are idempotent: a disconnect closes only connections made before it was asked
//! (they should have been closed then), and a membership change is applied as the store
//! says the membership is now, not as it was asked.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchboard_store::ControlEntry;

use super::control::{act_on_connections, Act};
use super::Hub;
use crate::{clock, App};

/// How far before the last check that found the broker connected a replay starts: the
/// broker takes up to its probe period plus its answer timeout to notice a silent
/// connection, and the nodes' clocks may differ by a little.
const REPLAY_MARGIN_MS: u64 = 15_000;

impl Hub {
    /// Called by the broker (through the hub's `Deliver`) once it is connected again.
    pub(crate) fn on_reconnected(&self) {
        let since = self.shared.health.linked_ms.load(Ordering::Relaxed).saturating_sub(REPLAY_MARGIN_MS);
        let hub = self.clone();
        tokio::spawn(async move {
            for app in hub.apps() {
                hub.catch_up(&app).await;
                hub.replay_control(&app, since).await;
            }
        });
    }

    /// Reads the head of every channel with history and subscribers here, and fills what
    /// this node did not deliver.
    async fn catch_up(&self, app: &Arc<App>) {
        for (channel, _) in app.registry.channel_counts() {
            let Some(head) = self.head(app, &channel).await else { continue };
            if let Some(gap) = app.registry.catch_up(&channel, head) {
                tracing::info!(channel = %channel, after = gap.after, head, "filling what the broker outage missed");
                self.fill_gap(app.clone(), gap);
            }
        }
    }

    /// Applies the control log of `app` from `since_ms` on, in order.
    async fn replay_control(&self, app: &Arc<App>, since_ms: u64) {
        let entries = match self.shared.store.control_since(&app.spec.slug, since_ms).await {
            Ok(entries) => entries,
            Err(e) => return tracing::error!(error = %e, "could not read the control log after a broker outage"),
        };
        for entry in entries {
            match serde_json::from_str::<Act>(&entry.act) {
                Ok(act) => self.replay(app, &entry, act).await,
                Err(e) => tracing::warn!(error = %e, "unreadable control log entry"),
            }
        }
    }

    async fn replay(&self, app: &Arc<App>, entry: &ControlEntry, act: Act) {
        let ids = app.registry.user_connections(&entry.user);
        let act = match act {
            Act::Disconnect => {
                let before = |id: &crate::ConnId| {
                    app.registry.get(*id).is_some_and(|(meta, _)| meta.connected_at_ms < entry.at_ms)
                };
                let ids = ids.into_iter().filter(before).collect();
                act_on_connections(app, ids, &Act::Disconnect);
                return;
            }
            Act::Join { channel, .. } | Act::Leave { channel } => {
                let memberships = self.shared.store.memberships(&app.spec.slug, &entry.user).await;
                match memberships {
                    Ok(m) if m.contains(&channel) => Act::Join { channel, head: None },
                    Ok(_) => Act::Leave { channel },
                    Err(e) => return tracing::error!(error = %e, "could not read memberships to replay"),
                }
            }
            _ => return,
        };
        act_on_connections(app, ids, &act);
    }

    /// Records a disconnect or membership change in the control log, so that a node cut off
    /// from the broker applies it when it is back. Only in a cluster.
    pub(crate) async fn log_control(&self, app: &App, user: &str, act: &Act) {
        if self.shared.broker.alone() || !matches!(act, Act::Disconnect | Act::Join { .. } | Act::Leave { .. }) {
            return;
        }
        let Ok(act) = serde_json::to_string(act) else { return };
        let entry = ControlEntry { app: app.spec.slug.clone(), at_ms: clock::unix_ms(), user: user.to_owned(), act };
        if let Err(e) = self.shared.store.log_control(&entry).await {
            tracing::warn!(error = %e, "could not record a control message; a node cut off now would miss it");
        }
    }
}
