//! The Redis broker: nodes share one Redis server's pub/sub.
//!
//! Each topic is its own Redis channel, `sb:{app}:{channel}`, so a node subscribes to a
//! channel only while it has local subscribers and receives nothing else, and no single
//! Redis channel carries everything. Interest changes go through one task, in the order the
//! hub made them. A node delivers its own publishes to its local subscribers at once (no
//! round trip) and skips them when Redis echoes them back; messages carry the publishing
//! node's id for that, and the event's seq.
//!
//! When a connection to Redis breaks, the broker reconnects by itself: the receiving task
//! retries with a growing pause (0.1 s to 5 s) and subscribes again to every topic with
//! local subscribers; a publish that finds its connection broken opens a new one and tries
//! once more. What other nodes published while this node was cut off is not received live;
//! for channels with history the hub reads such holes from the store when the next event
//! arrives (see the hub's `order.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};

use crate::remote::{Backoff, Change, Changes, Interest};
use crate::{split_prefix, Broker, BrokerError, Deliver, Envelope, Topic};

/// The prefix of every Redis channel Switchboard uses; `?channel_prefix=` adds to it.
const PREFIX: &str = "sb:";
/// Bytes before the payload: the node id, the seq, then the publish time.
const HEADER: usize = 16 + 8 + 8;

/// One node's handle on a Redis server.
pub struct RedisBroker {
    node: [u8; 16],
    prefix: Arc<str>,
    client: redis::Client,
    publisher: Mutex<MultiplexedConnection>,
    interest: Interest<Change>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    closed: AtomicBool,
}

fn unavailable(e: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

impl RedisBroker {
    /// Connects to `url` (`redis://host:port/`). Nodes of one cluster use the same URL; to
    /// run several clusters on one Redis server, give each its own `?channel_prefix=name`.
    pub async fn connect(url: &str) -> Result<Self, BrokerError> {
        let (url, name) = split_prefix(url)?;
        let prefix: Arc<str> = name.map_or_else(|| PREFIX.to_owned(), |n| format!("{PREFIX}{n}:")).into();
        let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
        let publisher = client.get_multiplexed_async_connection().await.map_err(unavailable)?;
        let first = client.get_async_pubsub().await.map_err(unavailable)?.split();
        let (interest, changes) = Interest::new();
        let receiver = Receiver {
            node: rand::random(),
            prefix: prefix.clone(),
            client: client.clone(),
            deliver: Arc::default(),
            interest: interest.share(),
        };
        let (node, deliver) = (receiver.node, receiver.deliver.clone());
        tokio::spawn(receiver.run(first, changes));
        let publisher = Mutex::new(publisher);
        Ok(Self { node, prefix, client, publisher, interest, deliver, closed: AtomicBool::new(false) })
    }

    fn publisher(&self) -> std::sync::MutexGuard<'_, MultiplexedConnection> {
        self.publisher.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one message, reconnecting once if the connection broke.
    async fn send(&self, channel: String, message: Vec<u8>) -> Result<(), BrokerError> {
        let publish = |mut connection: MultiplexedConnection| {
            let command = redis::cmd("PUBLISH").arg(&channel).arg(&message).clone();
            async move { command.query_async::<()>(&mut connection).await }
        };
        let connection = self.publisher().clone();
        match publish(connection).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error() => {
                tracing::warn!(error = %e, "Redis publish connection broke; reconnecting");
                let fresh = self.client.get_multiplexed_async_connection().await.map_err(unavailable)?;
                *self.publisher() = fresh.clone();
                publish(fresh).await.map_err(unavailable)
            }
            result => result.map_err(unavailable),
        }
    }
}

/// The receiving side: one task owns the pub/sub connection, applies interest changes in
/// order, delivers what arrives, and reconnects when the connection breaks.
struct Receiver {
    node: [u8; 16],
    prefix: Arc<str>,
    client: redis::Client,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    interest: Interest<Change>,
}

impl Receiver {
    async fn run(self, first: (PubSubSink, PubSubStream), mut changes: Changes<Change>) {
        let mut connection = Some(first);
        let mut backoff = Backoff::new();
        loop {
            let (mut sink, mut stream) = match connection.take() {
                Some(connection) => connection,
                None => match self.reconnect().await {
                    Ok(connection) => {
                        backoff.reset();
                        tracing::info!("reconnected to Redis pub/sub and subscribed again");
                        connection
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff.pause(), "Redis pub/sub unreachable");
                        if !backoff.wait(&mut changes, settle_of).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => self.receive(&message),
                        None => break,
                    },
                    change = changes.recv() => match change {
                        Some(change) => self.apply(&mut sink, change).await,
                        None => return,
                    },
                }
            }
            tracing::error!("lost the Redis pub/sub connection; reconnecting");
        }
    }

    /// A new pub/sub connection, subscribed to every topic with local subscribers.
    async fn reconnect(&self) -> Result<(PubSubSink, PubSubStream), redis::RedisError> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        for topic in self.interest.topics() {
            sink.subscribe(channel_name(&self.prefix, &topic)).await?;
        }
        Ok((sink, stream))
    }

    fn receive(&self, message: &redis::Msg) {
        if let (Some(envelope), Some(deliver)) = (decode(&self.prefix, &self.node, message), self.deliver.get()) {
            deliver.deliver(envelope);
        }
    }

    /// Applies one subscribe or unsubscribe command.
    async fn apply(&self, sink: &mut PubSubSink, change: Change) {
        let result = match change {
            Change::Subscribe(topic) => sink.subscribe(channel_name(&self.prefix, &topic)).await,
            Change::Unsubscribe(topic) => sink.unsubscribe(channel_name(&self.prefix, &topic)).await,
            Change::Settle(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "Redis subscription change failed");
        }
    }
}

fn settle_of(change: Change) -> Option<tokio::sync::oneshot::Sender<()>> {
    match change {
        Change::Settle(done) => Some(done),
        _ => None,
    }
}

fn channel_name(prefix: &str, topic: &Topic) -> String {
    format!("{prefix}{}:{}", topic.app, topic.channel)
}

/// A message from Redis as an envelope; `None` for this node's own and for foreign ones.
fn decode(prefix: &str, node: &[u8; 16], message: &redis::Msg) -> Option<Envelope> {
    let name = message.get_channel_name().strip_prefix(prefix)?;
    let (app, channel) = name.split_once(':')?;
    let bytes = message.get_payload_bytes();
    if bytes.len() < HEADER || bytes[..16] == node[..] {
        return None;
    }
    let seq = u64::from_be_bytes(bytes[16..24].try_into().ok()?);
    let published_us = u64::from_be_bytes(bytes[24..HEADER].try_into().ok()?);
    let payload = Bytes::copy_from_slice(&bytes[HEADER..]);
    Some(Envelope { app: app.into(), channel: channel.into(), payload, seq, published_us })
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
        message.extend_from_slice(&envelope.published_us.to_be_bytes());
        message.extend_from_slice(&envelope.payload);
        if self.interest.has(&topic) {
            if let Some(deliver) = self.deliver.get() {
                deliver.deliver(envelope);
            }
        }
        self.send(channel_name(&self.prefix, &topic), message).await
    }

    fn subscribe(&self, topic: Topic) {
        self.interest.subscribe(topic);
    }

    fn unsubscribe(&self, topic: Topic) {
        self.interest.unsubscribe(topic);
    }

    async fn settle(&self) {
        self.interest.settle().await;
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::RedisBroker;
    use crate::{Broker, Envelope, Topic};

    #[tokio::test]
    async fn redis_passes_conformance() {
        let Some(url) = crate::testing::redis_url() else { return };
        crate::testing::conformance_on(|| async { RedisBroker::connect(&url).await.unwrap() }).await;
    }

    /// Kills every connection of `kind` (`pubsub`, `normal`) on database `db` (this test's).
    async fn kill_clients(admin: &str, kind: &str, db: u32) -> usize {
        let mut admin = redis::Client::open(admin).unwrap().get_multiplexed_async_connection().await.unwrap();
        let list: String =
            redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg(kind).query_async(&mut admin).await.unwrap();
        let mut killed = 0;
        for line in list.lines().filter(|l| l.split(' ').any(|f| f == format!("db={db}"))) {
            let id = line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap();
            let _: () = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut admin).await.unwrap();
            killed += 1;
        }
        killed
    }

    #[tokio::test]
    async fn broken_connections_reconnect_and_subscribe_again() {
        let Some(admin) = crate::testing::redis_url() else { return };
        // Pub/sub ignores database numbers, but CLIENT LIST shows them: database 9 marks this
        // test's connections, so the kill below leaves other tests' alone.
        let url = format!("{}/9", admin.trim_end_matches('/'));
        let receiving = RedisBroker::connect(&url).await.unwrap();
        let sending = RedisBroker::connect(&url).await.unwrap();
        let recorder = Arc::new(crate::testing::Recorder::default());
        receiving.attach(recorder.clone());
        let topic = Topic { app: "reconnect".into(), channel: "room:1".into() };
        receiving.subscribe(topic.clone());
        receiving.settle().await;
        // Normal ones first: the receiving connection, once killed, comes back at once and
        // counts as `normal` until it has subscribed again.
        assert_eq!(
            kill_clients(&admin, "normal", 9).await,
            3,
            "both publishing connections, and the sender's idle pub/sub one"
        );
        assert_eq!(kill_clients(&admin, "pubsub", 9).await, 1, "the subscribed node's receiving connection");
        // Publish until one gets through: the receiver is back once Redis counts its subscription.
        let envelope = |n: u32| Envelope {
            app: "reconnect".into(),
            channel: "room:1".into(),
            payload: n.to_string().into(),
            seq: 0,
            published_us: 0,
        };
        for n in 0..100 {
            sending.publish(envelope(n)).await.unwrap();
            let got = tokio::time::timeout(Duration::from_millis(100), recorder.wait_for(1)).await;
            if got.is_ok_and(|payloads| !payloads.is_empty()) {
                return;
            }
        }
        panic!("no publish reached the node within 10 s of losing its connection");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error() {
        let error = RedisBroker::connect("redis://127.0.0.1:1/").await.err().expect("nothing listens on port 1");
        assert!(error.to_string().starts_with("broker unavailable"), "{error}");
    }
}
