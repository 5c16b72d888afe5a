//! The conformance suite every [`Broker`] implementation must pass.
//!
//! Call [`conformance`] with a factory that returns a new node on the same cluster each time
//! (the same memory bus, or the same Redis server).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::{Broker, BrokerError, Deliver, Envelope, Topic};

/// Records what a node received.
#[derive(Default)]
pub struct Recorder {
    received: Mutex<Vec<Envelope>>,
    notify: tokio::sync::Notify,
    reconnects: std::sync::atomic::AtomicUsize,
}

impl Deliver for Recorder {
    fn deliver(&self, envelope: Envelope) {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).push(envelope);
        self.notify.notify_waiters();
    }

    fn reconnected(&self) {
        self.reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Recorder {
    /// How often the broker said it was connected again.
    pub fn reconnects(&self) -> usize {
        self.reconnects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Payloads received so far.
    pub fn payloads(&self) -> Vec<Bytes> {
        let received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        received.iter().map(|e| e.payload.clone()).collect()
    }

    /// Envelopes received so far.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) until `n` envelopes have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Bytes> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = self.notify.notified();
            let got = self.payloads();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

fn topic(channel: &str) -> Topic {
    Topic { app: "conformance".into(), channel: channel.into() }
}

fn envelope(channel: &str, payload: &str) -> Envelope {
    let payload = Bytes::from(payload.to_owned());
    Envelope { app: "conformance".into(), channel: channel.into(), payload, seq: 0, published_us: 0 }
}

fn node(make: &impl Fn() -> Arc<dyn Broker>) -> (Arc<dyn Broker>, Arc<Recorder>) {
    let broker = make();
    let recorder = Arc::new(Recorder::default());
    broker.attach(recorder.clone());
    (broker, recorder)
}

/// Runs every check of the contract in the crate docs. Panics on the first broken rule.
/// Each node of a remote broker must be connected already, so `make` is synchronous.
pub async fn conformance(make: impl Fn() -> Arc<dyn Broker>) {
    let (a, a_rx) = node(&make);
    let (b, b_rx) = node(&make);
    let (c, c_rx) = node(&make);

    // Interest: only subscribed nodes receive, the publisher included when subscribed.
    a.subscribe(topic("room:1"));
    b.subscribe(topic("room:1"));
    b.subscribe(topic("room:1"));
    c.subscribe(topic("room:2"));
    for node in [&a, &b, &c] {
        node.settle().await;
    }
    a.publish(envelope("room:1", "first")).await.unwrap();
    assert_eq!(b_rx.wait_for(1).await, vec![Bytes::from("first")], "subscriber node receives once");
    assert_eq!(a_rx.wait_for(1).await, vec![Bytes::from("first")], "publisher node receives its own");

    // Order: many envelopes of one topic arrive in publish order.
    for i in 0..100 {
        a.publish(envelope("room:1", &i.to_string())).await.unwrap();
    }
    let got = b_rx.wait_for(101).await;
    let expected: Vec<Bytes> =
        std::iter::once("first".to_owned()).chain((0..100).map(|i| i.to_string())).map(Bytes::from).collect();
    assert_eq!(got, expected, "order within a topic");

    // A batch: every envelope Ok, and in order after what came before.
    let batch: Vec<Envelope> = (100..200).map(|i| envelope("room:1", &i.to_string())).collect();
    let results = a.publish_all(batch).await;
    assert!(results.len() == 100 && results.iter().all(Result::is_ok), "a batch is confirmed whole");
    let got = b_rx.wait_for(201).await;
    let batched: Vec<Bytes> = (100..200).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(got[101..], batched[..], "a batch arrives in order, after the single publishes");
    assert_eq!(a_rx.wait_for(201).await.len(), 201, "the publisher receives its own batch too");

    // A node that unsubscribed receives nothing more; the others still do.
    b.unsubscribe(topic("room:1"));
    b.settle().await;
    a.publish(envelope("room:1", "after")).await.unwrap();
    c.publish(envelope("room:2", "marker")).await.unwrap();
    assert_eq!(c_rx.wait_for(1).await, vec![Bytes::from("marker")]);
    assert_eq!(a_rx.wait_for(202).await.len(), 202);
    assert_eq!(b_rx.payloads().len(), 201, "unsubscribed node received nothing more");
    assert!(c_rx.payloads().iter().all(|p| p == "marker"), "other topics do not leak");

    // The seq and the publish time travel with the payload.
    a.publish(Envelope { seq: 7, published_us: 1_234_567, ..envelope("room:2", "stamped") }).await.unwrap();
    assert_eq!(c_rx.wait_for(2).await.len(), 2);
    let stamped = c_rx.envelopes().pop().expect("two envelopes");
    assert_eq!((stamped.seq, stamped.published_us, &*stamped.payload), (7, 1_234_567, &b"stamped"[..]));

    // Close: publishes fail afterwards.
    a.close().await.unwrap();
    assert!(matches!(a.publish(envelope("room:1", "x")).await, Err(BrokerError::Closed)));
}

/// Runs [`conformance`] on three nodes of one server, each opened by `connect`.
pub async fn conformance_on<B: Broker + 'static, F: std::future::Future<Output = B>>(connect: impl Fn() -> F) {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(connect().await) as Arc<dyn Broker>);
    }
    let nodes = Mutex::new(nodes);
    conformance(|| nodes.lock().unwrap_or_else(|e| e.into_inner()).pop().expect("three nodes")).await;
}

/// The Redis server for tests, from `SWITCHBOARD_TEST_REDIS` (`redis://127.0.0.1:port/`).
/// Without it: `None`, so the caller skips, unless `SWITCHBOARD_REQUIRE_REDIS` is set
/// (scripts/test sets both), which makes the missing server a failure.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("SWITCHBOARD_TEST_REDIS").ok();
    if url.is_none() {
        assert!(std::env::var_os("SWITCHBOARD_REQUIRE_REDIS").is_none(), "SWITCHBOARD_TEST_REDIS is not set");
        eprintln!("Redis part skipped: set SWITCHBOARD_TEST_REDIS=redis://127.0.0.1:PORT/ (scripts/test does)");
    }
    url
}

/// The NATS server for tests, from `SWITCHBOARD_TEST_NATS` (`nats://127.0.0.1:port`), like
/// [`redis_url`] (`SWITCHBOARD_REQUIRE_NATS` makes its absence a failure).
pub fn nats_url() -> Option<String> {
    let url = std::env::var("SWITCHBOARD_TEST_NATS").ok();
    if url.is_none() {
        assert!(std::env::var_os("SWITCHBOARD_REQUIRE_NATS").is_none(), "SWITCHBOARD_TEST_NATS is not set");
        eprintln!("NATS part skipped: set SWITCHBOARD_TEST_NATS=nats://127.0.0.1:PORT (scripts/test does)");
    }
    url
}
