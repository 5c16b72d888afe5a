//! The broker seam: how one node's publishes reach every node that has subscribers.
//!
//! # Layout
//! - [`Broker`]: the contract every implementation keeps (below).
//! - [`Deliver`]: what a node gives its broker to receive envelopes; the hub implements it.
//! - [`memory`]: the default, in-process implementation. A [`memory::MemoryBus`] can hold
//!   several nodes, which is how the conformance suite tests cross-node behaviour without
//!   a server.
//! - [`redis`]: nodes sharing a Redis server's pub/sub, one Redis channel per topic.
//! - [`nats`]: nodes sharing a NATS server, one subject per topic.
//! - [`testing`]: the conformance suite every implementation must pass; [`fault`]: a TCP
//!   proxy that cuts a node off, for fault tests.
//!
//! # The contract
//! - **Delivery**: a publish reaches every node subscribed to its topic at the time of the
//!   publish, including the publishing node, at most once per node.
//! - **Order**: envelopes of one topic published from one node arrive at every node in
//!   publish order.
//! - **Interest**: a node receives envelopes only for topics it subscribed to; the hub
//!   subscribes on its first local subscriber and unsubscribes after its last. A remote
//!   broker applies interest changes asynchronously: [`Broker::settle`] waits for them, and
//!   a publish from another node in the moment between is missed by the new subscriber
//!   (its own node's publishes never are).
//! - **Atomicity**: none across topics; a publish to several channels is several envelopes.
//! - **Non-blocking delivery**: [`Deliver::deliver`] must not block; the hub only queues.
//! - **What Ok means**: [`Broker::publish`] returns Ok once the broker's server has taken the
//!   envelope (Redis answered the PUBLISH; NATS answered a PING written after the PUB), so it
//!   reaches every node subscribed at that moment unless that node's own connection is lost.
//!   An Err means it may or may not have gone out. Nothing is stored or retried by the
//!   broker: across nodes, a channel without history is at-most-once, and one with history
//!   is exactly-once because each node fills holes from the store (see the hub's `order.rs`).
//! - **Liveness**: a remote broker notices a connection that stops delivering without
//!   closing (it probes it), makes a new one, subscribes again, and then calls
//!   [`Deliver::reconnected`]; [`Broker::health`] says whether it is connected now.

pub mod fault;
pub mod memory;
pub mod nats;
pub mod redis;
mod remote;
pub mod testing;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

/// One event for one channel of one app, encoded once by the publishing node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The app's slug.
    pub app: Arc<str>,
    /// The channel name.
    pub channel: Arc<str>,
    /// The frame every subscriber receives, byte for byte.
    pub payload: Bytes,
    /// The event's seq on a channel with history (also inside `payload`), 0 on others. A
    /// connection uses it to skip what a replay already sent it.
    pub seq: u64,
    /// Unix microseconds when the publishing node handed it to its broker, for the delivery
    /// latency metric; 0 when unknown (events read back from the store).
    pub published_us: u64,
}

/// A topic: one channel of one app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    /// The app's slug.
    pub app: Arc<str>,
    /// The channel name.
    pub channel: Arc<str>,
}

/// Why a broker call failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker was closed.
    #[error("broker is closed")]
    Closed,
    /// The broker's server could not be reached or answered an error.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// Receives envelopes for this node. Implemented by the hub.
pub trait Deliver: Send + Sync {
    /// Hands one envelope to local subscribers. Must not block.
    fn deliver(&self, envelope: Envelope);
    /// The broker's connection was lost and is back, subscribed again: what other nodes
    /// published in between was not received. Must not block.
    fn reconnected(&self) {}
}

/// Node-to-node pub/sub. See the crate docs for the contract.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Connects this node's receiving side. Called once, before any subscribe.
    fn attach(&self, deliver: Arc<dyn Deliver>);
    /// Sends an envelope to every node subscribed to its topic.
    async fn publish(&self, envelope: Envelope) -> Result<(), BrokerError>;
    /// Publishes `envelopes` in order, each with [`Broker::publish`]'s result. A remote broker
    /// may send them all before it awaits the server's confirmations: one round trip for all.
    async fn publish_all(&self, envelopes: Vec<Envelope>) -> Vec<Result<(), BrokerError>> {
        let mut results = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            results.push(self.publish(envelope).await);
        }
        results
    }
    /// Starts receiving a topic. Idempotent, and never blocks: the hub calls it while it
    /// holds the topic's registry lock, so that interest changes apply in the order the
    /// hub made them. A remote broker queues the command and applies it in order.
    fn subscribe(&self, topic: Topic);
    /// Stops receiving a topic. Idempotent and non-blocking, like [`Broker::subscribe`].
    fn unsubscribe(&self, topic: Topic);
    /// Waits until every subscribe and unsubscribe made so far is in effect (a remote
    /// broker applies them asynchronously; an in-process one at once).
    async fn settle(&self) {}
    /// Whether this node is connected to the broker's server now; the error says why not.
    fn health(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    /// Whether no other node can publish to this broker's topics (a single process). Every
    /// envelope then comes from this node, in the order it published them.
    fn alone(&self) -> bool {
        false
    }
    /// Releases connections. Later publishes fail with [`BrokerError::Closed`].
    async fn close(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// What Switchboard reads from a broker URL's query, for Redis and NATS alike; the rest of
/// the URL is the client's.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Params {
    /// `channel_prefix=name`: keeps clusters sharing one server apart (letters, digits, `-`
    /// and `_`).
    pub(crate) prefix: Option<String>,
    /// `ca=/path/ca.pem`: the CA (PEM, one or more certificates) the server's TLS certificate
    /// must chain to, in place of the built-in public roots. Percent-decoded.
    pub(crate) ca: Option<std::path::PathBuf>,
}

/// A broker URL without the parameters Switchboard reads, and those parameters.
pub(crate) fn split_params(url: &str) -> Result<(String, Params), BrokerError> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), Params::default())) };
    let (mut params, mut rest) = (Params::default(), Vec::new());
    for param in query.split('&') {
        if let Some(name) = param.strip_prefix("channel_prefix=") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                let error = format!("channel_prefix `{name}` must be letters, digits, `-` or `_`");
                return Err(BrokerError::Unavailable(error));
            }
            params.prefix = Some(name.to_owned());
        } else if let Some(path) = param.strip_prefix("ca=") {
            let path = tls::percent_decode(path)
                .ok_or_else(|| BrokerError::Unavailable(format!("ca=`{path}` is not a percent-encoded path")))?;
            if path.is_empty() {
                return Err(BrokerError::Unavailable("ca= needs the path of a PEM file".into()));
            }
            params.ca = Some(path.into());
        } else {
            rest.push(param);
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, params))
}

#[cfg(test)]
mod tests {
    use super::{split_params, Params};

    #[test]
    fn a_channel_prefix_keeps_clusters_apart_and_leaves_the_rest_of_the_url() {
        let prefix = |url: &str| split_params(url).map(|(url, p)| (url, p.prefix));
        assert_eq!(prefix("redis://h:1/").unwrap(), ("redis://h:1/".into(), None));
        assert_eq!(prefix("nats://h:1?channel_prefix=blue").unwrap(), ("nats://h:1".into(), Some("blue".into())));
        let kept = prefix("redis://h:1/?protocol=resp3&channel_prefix=b-2").unwrap();
        assert_eq!(kept, ("redis://h:1/?protocol=resp3".into(), Some("b-2".into())));
        let error = prefix("redis://h:1/?channel_prefix=a:b").unwrap_err().to_string();
        assert!(error.contains("channel_prefix `a:b`"), "{error}");
    }

    #[test]
    fn a_ca_file_is_read_from_the_url_and_percent_decoded() {
        let (url, params) =
            split_params("rediss://h:1/?ca=/etc/ssl/my%20ca.pem&protocol=resp3&channel_prefix=b").unwrap();
        assert_eq!(url, "rediss://h:1/?protocol=resp3");
        assert_eq!(params, Params { prefix: Some("b".into()), ca: Some("/etc/ssl/my ca.pem".into()) });
        assert!(split_params("tls://h:1?ca=").unwrap_err().to_string().contains("ca= needs the path"));
        assert!(split_params("tls://h:1?ca=%zz").unwrap_err().to_string().contains("percent-encoded"));
    }
}
