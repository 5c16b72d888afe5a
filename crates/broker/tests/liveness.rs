//! Faults between a node and its broker server, through a TCP proxy that goes silent (a
//! partition, a half-open connection): the node must notice, say so in its health, fail
//! publishes the server never confirmed, and come back by itself when the path heals.
//! Against the real Redis and NATS servers that scripts/test starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_broker::fault::FaultProxy;
use switchboard_broker::nats::NatsBroker;
use switchboard_broker::redis::RedisBroker;
use switchboard_broker::testing::{nats_url, redis_url, Recorder};
use switchboard_broker::{Broker, Envelope, Topic};

/// Bound on every wait: the brokers notice silence within 8 s.
const WAIT: Duration = Duration::from_secs(30);

fn topic() -> Topic {
    Topic { app: "liveness".into(), channel: "room:1".into() }
}

fn envelope(n: u32) -> Envelope {
    Envelope {
        app: "liveness".into(),
        channel: "room:1".into(),
        payload: n.to_string().into(),
        seq: 0,
        published_us: 0,
    }
}

/// `host:port` of a `scheme://host:port/` URL.
fn address(url: &str) -> String {
    url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/').to_owned()
}

/// Waits (bounded) until `broker`'s health is `healthy`.
async fn health_becomes(broker: &dyn Broker, healthy: bool) {
    let deadline = Instant::now() + WAIT;
    while broker.health().is_ok() != healthy {
        assert!(Instant::now() < deadline, "health did not become {healthy} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes from `sending` until one reaches `recorder` (bounded).
async fn delivers(sending: &dyn Broker, recorder: &Recorder) {
    let deadline = Instant::now() + WAIT;
    let before = recorder.payloads().len();
    for n in 0.. {
        assert!(Instant::now() < deadline, "no publish got through within {WAIT:?}");
        let _ = sending.publish(envelope(n)).await;
        let got = tokio::time::timeout(Duration::from_millis(100), recorder.wait_for(before + 1)).await;
        if got.is_ok_and(|p| p.len() > before) {
            return;
        }
    }
}

async fn a_silent_path_is_noticed_and_made_again(receiving: &dyn Broker, sending: &dyn Broker, proxy: &FaultProxy) {
    let recorder = Arc::new(Recorder::default());
    receiving.attach(recorder.clone());
    receiving.subscribe(topic());
    receiving.settle().await;
    delivers(sending, &recorder).await;
    assert!(receiving.health().is_ok());
    proxy.cut();
    health_becomes(receiving, false).await;
    proxy.heal();
    health_becomes(receiving, true).await;
    delivers(sending, &recorder).await;
    assert!(recorder.reconnects() >= 1, "the hub is told that the connection is back");
}

#[tokio::test]
async fn a_silent_redis_connection_is_noticed_and_made_again() {
    let Some(url) = redis_url() else { return };
    let proxy = FaultProxy::start(&address(&url)).await.unwrap();
    let receiving = RedisBroker::connect(&format!("redis://{}/", proxy.addr())).await.unwrap();
    let sending = RedisBroker::connect(&url).await.unwrap();
    a_silent_path_is_noticed_and_made_again(&receiving, &sending, &proxy).await;
}

#[tokio::test]
async fn a_silent_nats_connection_is_noticed_and_made_again() {
    let Some(url) = nats_url() else { return };
    let proxy = FaultProxy::start(&address(&url)).await.unwrap();
    let receiving = NatsBroker::connect(&format!("nats://{}", proxy.addr())).await.unwrap();
    let sending = NatsBroker::connect(&url).await.unwrap();
    a_silent_path_is_noticed_and_made_again(&receiving, &sending, &proxy).await;
}

/// A publish into a silent path is not Ok: the server never had it. Later ones fail at
/// once (no publisher waits on a dead path), and publishing works again after the heal.
async fn a_publish_the_server_never_had_fails(publishing: &dyn Broker, proxy: &FaultProxy) {
    publishing.publish(envelope(0)).await.expect("a healthy path confirms");
    proxy.cut();
    let started = Instant::now();
    let error = publishing.publish(envelope(1)).await.expect_err("the server never had it");
    assert!(started.elapsed() < WAIT, "it fails within the answer timeout");
    assert!(error.to_string().contains("broker unavailable"), "{error}");
    health_becomes(publishing, false).await;
    let started = Instant::now();
    assert!(publishing.publish(envelope(2)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1), "once the path is known dead, publishes fail at once");
    proxy.heal();
    health_becomes(publishing, true).await;
    let deadline = Instant::now() + WAIT;
    while publishing.publish(envelope(3)).await.is_err() {
        assert!(Instant::now() < deadline, "publishing did not work again after the heal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redis_publish_the_server_never_had_fails() {
    let Some(url) = redis_url() else { return };
    let proxy = FaultProxy::start(&address(&url)).await.unwrap();
    let publishing = RedisBroker::connect(&format!("redis://{}/", proxy.addr())).await.unwrap();
    a_publish_the_server_never_had_fails(&publishing, &proxy).await;
}

#[tokio::test]
async fn a_nats_publish_the_server_never_had_fails() {
    let Some(url) = nats_url() else { return };
    let proxy = FaultProxy::start(&address(&url)).await.unwrap();
    let publishing = NatsBroker::connect(&format!("nats://{}", proxy.addr())).await.unwrap();
    a_publish_the_server_never_had_fails(&publishing, &proxy).await;
}
