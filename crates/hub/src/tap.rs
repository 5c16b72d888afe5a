//! The hub wraps its broker in a [`TapBroker`], which sees every publish of this node: it
//! stamps each with the time for the delivery latency metric, counts it, times the broker,
//! and copies events for watchers such as the admin console's live tail. Copies are made
//! only while someone watches, and a watcher that falls behind loses copies, never slows
//! publishing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use switchboard_broker::{Broker, BrokerError, Deliver, Envelope, Topic};
use tokio::sync::broadcast;

use crate::metrics::{bump, AppMetrics, NodeMetrics};

/// Copies kept for a slow watcher before it starts losing them.
const BACKLOG: usize = 1024;

pub(crate) struct TapBroker {
    inner: Arc<dyn Broker>,
    tap: broadcast::Sender<Envelope>,
    apps: HashMap<Arc<str>, Arc<AppMetrics>>,
    node: Arc<NodeMetrics>,
}

impl TapBroker {
    pub(crate) fn new(
        inner: Arc<dyn Broker>,
        apps: HashMap<Arc<str>, Arc<AppMetrics>>,
        node: Arc<NodeMetrics>,
    ) -> Self {
        Self { inner, tap: broadcast::channel(BACKLOG).0, apps, node }
    }

    /// Stamps an event with its publish time, counts it and copies it to watchers. Internal
    /// topics (`$control`) are not events.
    fn stamp(&self, envelope: &mut Envelope) {
        if envelope.channel.starts_with('$') {
            return;
        }
        envelope.published_us = crate::clock::unix_us();
        if let Some(metrics) = self.apps.get(&envelope.app) {
            bump(&metrics.published);
        }
        if self.tap.receiver_count() > 0 {
            let _ = self.tap.send(envelope.clone());
        }
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

    async fn publish(&self, mut envelope: Envelope) -> Result<(), BrokerError> {
        self.stamp(&mut envelope);
        let started = Instant::now();
        let published = self.inner.publish(envelope).await;
        self.node.broker_publish.observe(started.elapsed());
        published
    }

    async fn publish_all(&self, mut envelopes: Vec<Envelope>) -> Vec<Result<(), BrokerError>> {
        envelopes.iter_mut().for_each(|envelope| self.stamp(envelope));
        let started = Instant::now();
        let published = self.inner.publish_all(envelopes).await;
        // Each waited for the whole batch.
        for _ in &published {
            self.node.broker_publish.observe(started.elapsed());
        }
        published
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

    fn health(&self) -> Result<(), BrokerError> {
        self.inner.health()
    }

    fn alone(&self) -> bool {
        self.inner.alone()
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.inner.close().await
    }
}
