//! The Redis broker: nodes share one Redis server's pub/sub.
//!
//! Each topic is its own Redis channel, `sb:{app}:{channel}`, so a node subscribes to a
//! channel only while it has local subscribers and receives nothing else, and no single
//! Redis channel carries everything. Interest changes go through one task, in the order the
//! hub made them. A node delivers its own publishes to its local subscribers at once (no
//! round trip) and skips them when Redis echoes them back; messages carry the publishing
//! node's id for that, and the event's seq.
//!
//! Known limit: when the pub/sub connection to Redis breaks, this node stops receiving (and
//! logs it); it does not yet reconnect and resubscribe by itself.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::{mpsc, oneshot};

use crate::{Broker, BrokerError, Deliver, Envelope, Topic};

/// The prefix of every Redis channel Switchboard uses.
const PREFIX: &str = "sb:";
/// Bytes before the payload: the node id, then the seq.
const HEADER: usize = 16 + 8;

enum Interest {
    Subscribe(String),
    Unsubscribe(String),
    /// Answered once every earlier change is applied.
    Settle(oneshot::Sender<()>),
}

/// One node's handle on a Redis server.
pub struct RedisBroker {
    node: [u8; 16],
    publisher: MultiplexedConnection,
    interest: mpsc::UnboundedSender<Interest>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    /// Topics with local subscribers, for delivering this node's own publishes directly.
    local: Mutex<HashSet<Topic>>,
    closed: AtomicBool,
}

fn unavailable(e: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

impl RedisBroker {
    /// Connects to `url` (`redis://host:port/`).
    pub async fn connect(url: &str) -> Result<Self, BrokerError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let publisher = client.get_multiplexed_async_connection().await.map_err(unavailable)?;
        let (sink, mut stream) = client.get_async_pubsub().await.map_err(unavailable)?.split();
        let (interest, changes) = mpsc::unbounded_channel();
        tokio::spawn(apply_interest(sink, changes));
        let node: [u8; 16] = rand::random();
        let deliver: Arc<OnceLock<Arc<dyn Deliver>>> = Arc::default();
        let receiver = deliver.clone();
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                if let (Some(envelope), Some(deliver)) = (decode(&node, &message), receiver.get()) {
                    deliver.deliver(envelope);
                }
            }
            tracing::error!("lost the Redis pub/sub connection; this node receives no more cross-node events");
        });
        Ok(Self { node, publisher, interest, deliver, local: Mutex::default(), closed: AtomicBool::new(false) })
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashSet<Topic>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Applies subscribe and unsubscribe commands in order.
async fn apply_interest(mut sink: PubSubSink, mut changes: mpsc::UnboundedReceiver<Interest>) {
    while let Some(change) = changes.recv().await {
        let result = match change {
            Interest::Subscribe(name) => sink.subscribe(&name).await,
            Interest::Unsubscribe(name) => sink.unsubscribe(&name).await,
            Interest::Settle(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Redis subscription change failed");
        }
    }
}

fn channel_name(topic: &Topic) -> String {
    format!("{PREFIX}{}:{}", topic.app, topic.channel)
}

/// A message from Redis as an envelope; `None` for this node's own and for foreign ones.
fn decode(node: &[u8; 16], message: &redis::Msg) -> Option<Envelope> {
    let name = message.get_channel_name().strip_prefix(PREFIX)?;
    let (app, channel) = name.split_once(':')?;
    let bytes = message.get_payload_bytes();
    if bytes.len() < HEADER || bytes[..16] == node[..] {
        return None;
    }
    let seq = u64::from_be_bytes(bytes[16..HEADER].try_into().ok()?);
    Some(Envelope { app: app.into(), channel: channel.into(), payload: Bytes::copy_from_slice(&bytes[HEADER..]), seq })
}

#[async_trait]
impl Broker for RedisBroker {
    fn attach(&self, deliver: Arc<dyn Deliver>) {
        let _ = self.deliver.set(deliver);
    }

    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        let topic = Topic { app: envelope.app.clone(), channel: envelope.channel.clone() };
        let mut message = Vec::with_capacity(HEADER + envelope.payload.len());
        message.extend_from_slice(&self.node);
        message.extend_from_slice(&envelope.seq.to_be_bytes());
        message.extend_from_slice(&envelope.payload);
        if self.local().contains(&topic) {
            if let Some(deliver) = self.deliver.get() {
                deliver.deliver(envelope);
            }
        }
        let mut publisher = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(channel_name(&topic))
            .arg(message)
            .query_async::<()>(&mut publisher)
            .await
            .map_err(unavailable)
    }

    fn subscribe(&self, topic: Topic) {
        let name = channel_name(&topic);
        if self.local().insert(topic) {
            let _ = self.interest.send(Interest::Subscribe(name));
        }
    }

    fn unsubscribe(&self, topic: Topic) {
        let name = channel_name(&topic);
        if self.local().remove(&topic) {
            let _ = self.interest.send(Interest::Unsubscribe(name));
        }
    }

    async fn settle(&self) {
        let (done, settled) = oneshot::channel();
        if self.interest.send(Interest::Settle(done)).is_ok() {
            let _ = settled.await;
        }
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::RedisBroker;
    use crate::Broker;

    #[tokio::test]
    async fn redis_passes_conformance() {
        let Some(url) = crate::testing::redis_url() else { return };
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(Arc::new(RedisBroker::connect(&url).await.unwrap()) as Arc<dyn Broker>);
        }
        let nodes = std::sync::Mutex::new(nodes);
        crate::testing::conformance(|| nodes.lock().unwrap().pop().expect("three nodes")).await;
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error() {
        let error = RedisBroker::connect("redis://127.0.0.1:1/").await.err().expect("nothing listens on port 1");
        assert!(error.to_string().starts_with("broker unavailable"), "{error}");
    }
}
