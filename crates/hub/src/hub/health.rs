//! Readiness beyond shutdown: a node cut off from its broker or its store cannot keep its
//! promises (events from other nodes do not arrive; nothing is stored), so /readyz fails
//! while it is, and a load balancer sends new clients elsewhere. A task checks both every
//! [`CHECK_EVERY`]; the broker probes its own connections (see the broker crate), the store
//! answers one trivial query within [`STORE_TIMEOUT`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use super::{Hub, Shared};
use crate::clock;

/// How often the broker and the store are checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A store that takes longer than this to answer one trivial query is not serving.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the last check found.
#[derive(Default)]
pub(crate) struct Health {
    /// Why the node is not ready, one line per backend that failed; empty when it is.
    problems: Mutex<Vec<String>>,
    /// Unix milliseconds of the last check that found the broker connected.
    pub(crate) linked_ms: AtomicU64,
}

impl Health {
    pub(crate) fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records a check's findings and logs each change once.
    fn record(&self, found: Vec<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        for problem in found.iter().filter(|p| !problems.contains(p)) {
            tracing::error!(problem, "this node is not ready: /readyz fails until it recovers");
        }
        if found.is_empty() && !problems.is_empty() {
            tracing::info!("the broker and the store answer again: /readyz passes");
        }
        *problems = found;
    }
}

impl Hub {
    /// Starts the checks; they stop with the hub.
    pub(crate) fn start_health_checks(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        self.shared.health.linked_ms.store(clock::unix_ms(), Ordering::Relaxed);
        let shared = std::sync::Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            loop {
                tick.tick().await;
                let Some(shared) = Weak::<Shared>::upgrade(&shared) else { return };
                Hub { shared }.check_health().await;
            }
        });
    }

    async fn check_health(&self) {
        let mut found = Vec::new();
        match self.shared.broker.health() {
            Ok(()) => self.shared.health.linked_ms.store(clock::unix_ms(), Ordering::Relaxed),
            Err(e) => found.push(format!("broker: {e}")),
        }
        match tokio::time::timeout(STORE_TIMEOUT, self.shared.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => found.push(format!("store: {e}")),
            Err(_) => found.push(format!("store: no answer within {STORE_TIMEOUT:?}")),
        }
        self.shared.health.record(found);
    }

    /// Why this node is not ready: shutdown began, or a backend fails; empty when ready.
    pub fn readiness_problems(&self) -> Vec<String> {
        if !self.is_ready() {
            return vec!["draining: the node is shutting down".to_owned()];
        }
        self.shared.health.problems()
    }
}
