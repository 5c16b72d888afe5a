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
    /// The nodes per topic. A shared list, so a publish takes it out of the lock with one
    /// reference count and delivers with no broker lock held: delivery takes the hub's
    /// channel locks, which the hub holds while it subscribes here (lock order).
    interest: Arc<RwLock<HashMap<Topic, Nodes>>>,
}

/// The nodes interested in one topic.
type Nodes = Arc<Vec<Arc<Node>>>;

struct Node {
    deliver: OnceLock<Arc<dyn Deliver>>,
}

/// One node's handle on a [`MemoryBus`].
pub struct MemoryBroker {
    bus: MemoryBus,
    node: Arc<Node>,
    topics: RwLock<HashSet<Topic>>,
    closed: AtomicBool,
    alone: bool,
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
            alone: false,
        }
    }
}

impl MemoryBroker {
    /// A broker on a bus of its own: the single-node default.
    pub fn standalone() -> Self {
        MemoryBroker { alone: true, ..MemoryBus::new().node() }
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
        let nodes = self.bus.interest.read().unwrap_or_else(poisoned).get(&topic).cloned();
        if let Some(nodes) = nodes {
            for node in nodes.iter() {
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
        Arc::make_mut(interest.entry(topic).or_default()).push(self.node.clone());
    }

    fn unsubscribe(&self, topic: Topic) {
        if !self.topics.write().unwrap_or_else(poisoned).remove(&topic) {
            return;
        }
        let mut interest = self.bus.interest.write().unwrap_or_else(poisoned);
        if let Some(nodes) = interest.get_mut(&topic) {
            Arc::make_mut(nodes).retain(|n| !Arc::ptr_eq(n, &self.node));
            if nodes.is_empty() {
                interest.remove(&topic);
            }
        }
    }

    fn alone(&self) -> bool {
        self.alone
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

    #[test]
    fn only_a_standalone_broker_is_alone() {
        let bus = MemoryBus::new();
        assert_eq!([MemoryBroker::standalone().alone(), bus.node().alone()], [true, false]);
    }
}
