//! The in-memory broker: one process, zero configuration.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;

use crate::{Broker, BrokerError, Deliver, Envelope, Topic};

/// A bus that in-process nodes share. A single server uses one bus with one node.
#[derive(Clone, Default)]
pub struct MemoryBus {
    // RwLock from std: publishes only read, and nothing awaits while holding it.
    interest: Arc<RwLock<HashMap<Topic, Vec<Arc<Node>>>>>,
}

struct Node {
    deliver: OnceLock<Arc<dyn Deliver>>,
}

/// One node's handle on a [`MemoryBus`].
pub struct MemoryBroker {
    bus: MemoryBus,
    node: Arc<Node>,
    topics: RwLock<HashSet<Topic>>,
    closed: AtomicBool,
}

impl MemoryBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A broker for one more node on this bus.
    pub fn node(&self) -> MemoryBroker {
        MemoryBroker {
            bus: self.clone(),
            node: Arc::new(Node { deliver: OnceLock::new() }),
            topics: RwLock::default(),
            closed: AtomicBool::new(false),
        }
    }
}

impl MemoryBroker {
    /// A broker on a bus of its own: the single-node default.
    pub fn standalone() -> Self {
        MemoryBus::new().node()
    }
}

fn poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    // A panic while holding these locks leaves the maps consistent (single inserts/removes).
    e.into_inner()
}

#[async_trait]
impl Broker for MemoryBroker {
    fn attach(&self, deliver: Arc<dyn Deliver>) {
        let _ = self.node.deliver.set(deliver);
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let topic = Topic { app: envelope.app.clone(), channel: envelope.channel.clone() };
        let interest = self.bus.interest.read().unwrap_or_else(poisoned);
        if let Some(nodes) = interest.get(&topic) {
            for node in nodes {
                if let Some(deliver) = node.deliver.get() {
                    deliver.deliver(envelope.clone());
                }
            }
        }
        Ok(())
    }

    fn subscribe(&self, topic: Topic) {
        if !self.topics.write().unwrap_or_else(poisoned).insert(topic.clone()) {
            return;
        }
        let mut interest = self.bus.interest.write().unwrap_or_else(poisoned);
        interest.entry(topic).or_default().push(self.node.clone());
    }

    fn unsubscribe(&self, topic: Topic) {
        if !self.topics.write().unwrap_or_else(poisoned).remove(&topic) {
            return;
        }
        let mut interest = self.bus.interest.write().unwrap_or_else(poisoned);
        if let Some(nodes) = interest.get_mut(&topic) {
            nodes.retain(|n| !Arc::ptr_eq(n, &self.node));
            if nodes.is_empty() {
                interest.remove(&topic);
            }
        }
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.closed.store(true, Ordering::Release);
        let topics: Vec<Topic> = self.topics.read().unwrap_or_else(poisoned).iter().cloned().collect();
        for topic in topics {
            self.unsubscribe(topic);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_broker_passes_conformance() {
        let bus = MemoryBus::new();
        crate::testing::conformance(|| Arc::new(bus.node()) as Arc<dyn Broker>).await;
    }
}
