//! Slow consumers, keepalive, readiness, and graceful shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use switchboard_protocol::Disconnect;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{manifest, TestServer, API_KEY, WAIT};

#[tokio::test]
async fn slow_consumer_is_closed_4008_without_slowing_others() {
    let mut small = manifest();
    small["limits"] = json!({"outbox_max_bytes": 4_000_000});
    let server = TestServer::start_with(vec![small], |_| {}).await;
    let mut slow = server.connect("slow").await;
    let mut fast = server.connect("fast").await;
    let chunk = "x".repeat(16_000);
    // 24 batches of 100 x 16 kB = 38 MB: more than the slow client's kernel buffers and its
    // 4 MB outbox can hold. The fast client reads each batch before the next is sent.
    let batches = 24;
    for _ in 0..batches {
        let events: Vec<_> =
            (0..100).map(|_| json!({"channels": ["broadcast"], "type": "bulk", "data": chunk})).collect();
        assert_eq!(server.publish_batch(events).await, 200);
        for _ in 0..100 {
            assert_eq!(fast.next_json().await["type"], "bulk", "the fast client gets every event");
        }
    }
    let (frames, closed) = slow.closed().await;
    assert_eq!(closed.code, Disconnect::SLOW_CONSUMER, "after {} frames", frames.len());
    assert!(frames.len() < batches * 100);
    fast.assert_alive().await;
    let overflows = server.metric_until("switchboard_queue_overflows_total", &["app=\"app1\""], |n| n == 1.0).await;
    assert_eq!(overflows, 1.0, "the slow consumer's close is counted");
}

#[tokio::test]
async fn pings_keep_live_peers_and_drop_dead_ones() {
    let mut fast_ping = manifest();
    fast_ping["websockets"]["realtime"]["ping_interval"] = json!("200ms");
    let server = TestServer::start_with(vec![fast_ping], |_| {}).await;
    let mut live = server.connect("live").await;
    let dead = server.connect("dead").await;
    // The live client reads, so its library answers each ping.
    let mut pings = 0;
    while pings < 4 {
        match tokio::time::timeout(WAIT, live.ws.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    // The dead one never read, so never answered: it is gone after two unanswered pings.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, listed) = server.api("GET", "/api/v1/apps/app1/users/dead/connections", Some(API_KEY), None).await;
        if listed["connections"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "dead peer still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(dead);
    live.assert_alive().await;
}

#[tokio::test]
async fn shutdown_fails_readyz_then_drains_and_closes_1001() {
    let mut server = TestServer::start_with(vec![manifest()], |s| s.drain_grace = Duration::from_millis(500)).await;
    let mut client = server.connect("u1").await;
    assert_eq!(server.api("GET", "/readyz", None, None).await.0, 200);
    server.publish(json!({"channels": ["user:u1"], "type": "last", "data": null})).await;
    server.begin_shutdown();
    // /readyz fails first, while sockets are still open.
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.api("GET", "/readyz", None, None).await.0 != 503 {
        assert!(tokio::time::Instant::now() < deadline, "readyz never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (frames, closed) = client.closed().await;
    assert_eq!(frames.first().map(|f| f["type"].clone()), Some(json!("last")), "queued events drain first");
    assert_eq!(closed.code, Disconnect::GOING_AWAY);
    server.finish().await;
}

/// A node reaches PostgreSQL through a proxy that goes silent: /readyz fails with the reason
/// while it is, and passes again once the store answers.
#[tokio::test]
async fn a_node_cut_off_from_its_store_fails_readyz_until_it_answers_again() {
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let address = store.split_once('@').unwrap().1.split_once('/').unwrap().0.to_owned();
    let proxy = switchboard_broker::fault::FaultProxy::start(&address).await.unwrap();
    let via_proxy = store.replace(&address, &proxy.addr().to_string());
    let server = TestServer::start_with(vec![manifest()], move |s| s.store = via_proxy).await;
    assert_eq!(server.api("GET", "/readyz", None, None).await.0, 200);
    proxy.cut();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let unready = loop {
        let (status, body) = server.api("GET", "/readyz", None, None).await;
        if status == 503 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz stayed 200 with the store cut off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(unready["status"], "unready", "{unready}");
    assert!(unready["problems"][0].as_str().unwrap().starts_with("store:"), "{unready}");
    proxy.heal();
    while server.api("GET", "/readyz", None, None).await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(30), "/readyz did not pass again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
