//! The background sweep: each app's inbox TTL and maximum count (the manifest's `inbox`).
//! Inserts already trim to the maximum count; the sweep also catches a lowered maximum and
//! everything that aged out.

use std::time::Duration;

use switchboard_hub::{unix_ms, Hub};

/// Runs [`sweep`] forever, as often as the shortest TTL needs (every TTL/2, between 1 s and
/// 1 min), so a row outlives its TTL by at most that interval.
pub async fn run(hub: Hub) {
    let mut tick = tokio::time::interval(interval(&hub));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sweep(&hub).await;
    }
}

/// Applies every app's retention once; returns how many rows went.
pub async fn sweep(hub: &Hub) -> u64 {
    let mut gone = 0;
    for app in hub.apps() {
        let inbox = app.spec.inbox;
        match hub.store().purge_inbox(&app.spec.slug, inbox.notifications, inbox.alerts, unix_ms()).await {
            Ok(n) => gone += n,
            Err(e) => tracing::warn!(app = %app.slug, error = %e, "inbox retention sweep failed; retrying later"),
        }
    }
    if gone > 0 {
        tracing::debug!(removed = gone, "inbox retention removed old notifications and alerts");
    }
    gone
}

fn interval(hub: &Hub) -> Duration {
    let shortest = hub
        .apps()
        .iter()
        .flat_map(|a| [a.spec.inbox.notifications.max_age, a.spec.inbox.alerts.max_age])
        .min()
        .unwrap_or(Duration::from_secs(60));
    (shortest / 2).clamp(Duration::from_secs(1), Duration::from_secs(60))
}
