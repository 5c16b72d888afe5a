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
//!
//! Liveness: a subscriber connection can stop delivering without closing (a half-open TCP
//! connection, a failover that left it attached to the wrong server). So the receiving task
//! publishes a probe to a channel only this node subscribes to every [`PROBE_EVERY`]; a probe
//! not received back within [`ANSWER_TIMEOUT`] drops the connection and makes a new one, and
//! the broker reports itself unhealthy until a probe comes back.
//!
//! A publish is Ok once Redis answered the PUBLISH: Redis has handed it to every subscriber
//! connected at that moment.
//!
//! TLS: `rediss://host:port/` connects over TLS (the redis crate's rustls support, ring). The
//! server's certificate must chain to the `?ca=/path/ca.pem` file when the URL names one
//! (only to it), or to a public CA (Mozilla's roots, built in), and must name the URL's host.

mod receiver;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;

use crate::remote::{Change, Interest};
use crate::{split_params, tls, Broker, BrokerError, Deliver, Envelope, Topic};
use receiver::Receiver;

/// The prefix of every Redis channel Switchboard uses; `?channel_prefix=` adds to it.
const PREFIX: &str = "sb:";
/// Bytes before the payload: the node id, the seq, then the publish time.
const HEADER: usize = 16 + 8 + 8;
/// The receiving connection is probed this often.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// A probe not back this long means the receiving connection no longer delivers; a
/// PUBLISH not answered this long fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(6);
/// While the publishing connection is down, a new one is tried this often.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// One node's handle on a Redis server.
pub struct RedisBroker {
    node: [u8; 16],
    prefix: Arc<str>,
    client: redis::Client,
    publisher: Arc<Mutex<Publisher>>,
    interest: Interest<Change>,
    deliver: Arc<OnceLock<Arc<dyn Deliver>>>,
    /// Whether the receiving connection is up and its last probe came back.
    healthy: Arc<AtomicBool>,
    closed: AtomicBool,
}

fn unavailable(e: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

/// A failed first connection, with what to do about it when that is known: a certificate
/// this node does not trust, or plain `redis://` to a port that speaks only TLS (the server
/// drops the connection at the first bytes that are not a TLS handshake, or answers them
/// with a TLS alert).
fn not_connected(e: redis::RedisError, tls: bool) -> BrokerError {
    let message = e.to_string();
    let plain_to_tls = e.is_connection_dropped() || e.is_io_error() || e.kind() == redis::ErrorKind::Parse;
    let advice = match tls::advice(&message) {
        "" if !tls && plain_to_tls && !e.is_connection_refusal() && !e.is_timeout() => {
            "; if this server accepts only TLS, use a rediss:// URL"
        }
        advice => advice,
    };
    BrokerError::Unavailable(format!("Redis: {message}{advice}"))
}

impl RedisBroker {
    /// Connects to `url` (`redis://host:port/`, or `rediss://host:port/` for TLS, with
    /// `?ca=/path/ca.pem` for a server whose certificate a private CA signed). Nodes of one
    /// cluster use the same URL; to run several clusters on one Redis server, give each its
    /// own `?channel_prefix=name`.
    pub async fn connect(url: &str) -> Result<Self, BrokerError> {
        let (url, params) = split_params(url)?;
        let prefix: Arc<str> = params.prefix.map_or_else(|| PREFIX.to_owned(), |n| format!("{PREFIX}{n}:")).into();
        let tls = url.starts_with("rediss://");
        let client = match &params.ca {
            Some(_) if !tls => {
                let error = "ca= is for TLS: use a rediss:// URL (or leave ca= out for plain redis://)";
                return Err(BrokerError::Unavailable(error.into()));
            }
            Some(ca) => {
                let root_cert = Some(tls::read_ca(ca)?.0);
                redis::Client::build_with_tls(url.as_str(), redis::TlsCertificates { client_tls: None, root_cert })
            }
            None => redis::Client::open(url.as_str()),
        }
        .map_err(unavailable)?;
        let publisher = client.get_multiplexed_async_connection().await.map_err(|e| not_connected(e, tls))?;
        let (interest, changes) = Interest::new();
        let node: [u8; 16] = rand::random();
        let receiver = Receiver {
            node,
            prefix: prefix.clone(),
            probe_channel: format!("{prefix}!probe:{}", node.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            client: client.clone(),
            deliver: Arc::default(),
            interest: interest.share(),
            healthy: Arc::new(AtomicBool::new(true)),
        };
        let first = receiver.open().await.map_err(|e| not_connected(e, tls))?;
        let (deliver, healthy) = (receiver.deliver.clone(), receiver.healthy.clone());
        tokio::spawn(receiver.run(first, changes));
        let publisher = Arc::new(Mutex::new(Publisher { connection: Some(publisher), reconnecting: false }));
        Ok(Self { node, prefix, client, publisher, interest, deliver, healthy, closed: AtomicBool::new(false) })
    }

    fn publisher(&self) -> std::sync::MutexGuard<'_, Publisher> {
        self.publisher.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The publishing connection. While it is down, publishes fail at once and one task
    /// makes it again (a partition must not make every publish wait).
    fn connection(&self) -> Result<MultiplexedConnection, BrokerError> {
        let mut publisher = self.publisher();
        if let Some(connection) = &publisher.connection {
            return Ok(connection.clone());
        }
        if !publisher.reconnecting {
            publisher.reconnecting = true;
            tokio::spawn(reconnect_publisher(Arc::downgrade(&self.publisher), self.client.clone()));
        }
        Err(BrokerError::Unavailable("the Redis publish connection is down; reconnecting".into()))
    }

    /// Sends one message. A connection that broke is made again and the message sent once
    /// more; one that does not answer within [`ANSWER_TIMEOUT`] fails the publish (it may
    /// or may not have gone out) and is made again for the next.
    async fn send(&self, channel: String, message: Vec<u8>) -> Result<(), BrokerError> {
        let publish = |mut connection: MultiplexedConnection| {
            let command = redis::cmd("PUBLISH").arg(&channel).arg(&message).clone();
            async move {
                match tokio::time::timeout(ANSWER_TIMEOUT, command.query_async::<()>(&mut connection)).await {
                    Ok(sent) => sent.map_err(Failure::Error),
                    Err(_) => Err(Failure::Silent),
                }
            }
        };
        match publish(self.connection()?).await {
            Ok(()) => Ok(()),
            Err(Failure::Error(e)) if e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error() => {
                // A restarted server takes a new connection at once: try one, and the
                // message once more.
                tracing::warn!(error = %e, "Redis publish connection broke; reconnecting");
                let fresh = tokio::time::timeout(ANSWER_TIMEOUT, self.client.get_multiplexed_async_connection()).await;
                let Ok(Ok(fresh)) = fresh else {
                    self.publisher().connection = None;
                    return Err(unavailable(e));
                };
                self.publisher().connection = Some(fresh.clone());
                publish(fresh).await.map_err(|failure| self.failed(failure))
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    fn failed(&self, failure: Failure) -> BrokerError {
        match failure {
            Failure::Error(e) => unavailable(e),
            Failure::Silent => {
                self.publisher().connection = None;
                BrokerError::Unavailable(format!("Redis did not confirm the publish within {ANSWER_TIMEOUT:?}"))
            }
        }
    }
}

/// Why a PUBLISH failed.
enum Failure {
    Error(redis::RedisError),
    /// No answer in time: the connection is as good as gone.
    Silent,
}

/// The connection publishes go out on; `None` while it is down.
struct Publisher {
    connection: Option<MultiplexedConnection>,
    /// Whether a task is making it again.
    reconnecting: bool,
}

/// Makes the publishing connection again, pausing [`RECONNECT_PAUSE`] between attempts,
/// until it is made or the broker is gone.
async fn reconnect_publisher(publisher: std::sync::Weak<Mutex<Publisher>>, client: redis::Client) {
    loop {
        let fresh = tokio::time::timeout(ANSWER_TIMEOUT, client.get_multiplexed_async_connection()).await;
        let Some(publisher) = publisher.upgrade() else { return };
        if let Ok(Ok(fresh)) = fresh {
            let mut publisher = publisher.lock().unwrap_or_else(|e| e.into_inner());
            (publisher.connection, publisher.reconnecting) = (Some(fresh), false);
            tracing::info!("reconnected the Redis publish connection");
            return;
        }
        drop(publisher);
        tokio::time::sleep(RECONNECT_PAUSE).await;
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

    fn health(&self) -> Result<(), BrokerError> {
        if !self.healthy.load(Ordering::Acquire) {
            return Err(BrokerError::Unavailable("the Redis pub/sub connection is down; reconnecting".into()));
        }
        match self.publisher().connection {
            Some(_) => Ok(()),
            None => Err(BrokerError::Unavailable("the Redis publish connection is down; reconnecting".into())),
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
    use std::time::Duration;

    use super::RedisBroker;
    use crate::{Broker, Envelope, Topic};

    #[tokio::test]
    async fn redis_passes_conformance() {
        let Some(url) = crate::testing::redis_url() else { return };
        crate::testing::conformance_on(|| async { RedisBroker::connect(&url).await.unwrap() }).await;
    }

    /// The ids of every connection of `kind` (`pubsub`, `normal`) on database `db` (this test's).
    async fn clients(admin: &mut redis::aio::MultiplexedConnection, kind: &str, db: u32) -> Vec<String> {
        let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg(kind).query_async(admin).await.unwrap();
        let ours = list.lines().filter(|l| l.split(' ').any(|f| f == format!("db={db}")));
        ours.map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap().to_owned()).collect()
    }

    /// Kills every connection of `kind` on database `db` once there are `expected` of them
    /// (for at most 5 s); how many it killed. A broker opens its connections in the
    /// background, and reopens its receiving one when its probe's connection is killed: one
    /// that has not subscribed yet still counts as plain.
    async fn kill_clients(admin: &str, kind: &str, db: u32, expected: usize) -> usize {
        let mut admin = redis::Client::open(admin).unwrap().get_multiplexed_async_connection().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut ids = clients(&mut admin, kind, db).await;
        while ids.len() != expected && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ids = clients(&mut admin, kind, db).await;
        }
        for id in &ids {
            let _: () = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(&mut admin).await.unwrap();
        }
        ids.len()
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
        assert_eq!(kill_clients(&admin, "normal", 9, 4).await, 4, "both nodes' publishing and probing connections");
        assert_eq!(
            kill_clients(&admin, "pubsub", 9, 2).await,
            2,
            "both nodes' receiving connections (probes keep them subscribed)"
        );
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
