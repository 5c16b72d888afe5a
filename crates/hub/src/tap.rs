//! A copy of every event this node publishes, for watchers such as the admin console's live
//! tail. The hub wraps its broker in a [`TapBroker`]; copies are made only while someone
//! watches, and a watcher that falls behind loses copies, never slows publishing.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_broker::{Broker, BrokerError, Deliver, Envelope, Topic};
use tokio::sync::broadcast;

/// Copies kept for a slow watcher before it starts losing them.
const BACKLOG: usize = 1024;

pub(crate) struct TapBroker {
    inner: Arc<dyn Broker>,
    tap: broadcast::Sender<Envelope>,
}

impl TapBroker {
    pub(crate) fn new(inner: Arc<dyn Broker>) -> Self {
        Self { inner, tap: broadcast::channel(BACKLOG).0 }
    }

    /// A new watcher's receiving end.
    pub(crate) fn watch(&self) -> broadcast::Receiver<Envelope> {
        self.tap.subscribe()
    }
}

#[async_trait]
impl Broker for TapBroker {
    fn attach(&self, deliver: Arc<dyn Deliver>) {
        self.inner.attach(deliver);
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError> {
        // Internal topics (`$control`) are not events.
        if self.tap.receiver_count() > 0 && !envelope.channel.starts_with('$') {
            let _ = self.tap.send(envelope.clone());
        }
        self.inner.publish(envelope).await
    }

    fn subscribe(&self, topic: Topic) {
        self.inner.subscribe(topic);
    }

    fn unsubscribe(&self, topic: Topic) {
        self.inner.unsubscribe(topic);
    }

    async fn settle(&self) {
        self.inner.settle().await;
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.inner.close().await
    }
}
