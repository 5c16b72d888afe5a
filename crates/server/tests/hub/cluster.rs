//! Several nodes over Redis: a publish on any node reaches every subscriber on every node.
//! (The full multi-node issue, with failover and presence across nodes, is not done yet.)

use serde_json::json;

use crate::support::{manifest, Client, TestServer, API_KEY};

/// Two nodes on one Redis; with `store`, sharing that store too.
async fn two_nodes(redis: &str, store: Option<&str>) -> (TestServer, TestServer) {
    let node = |name: &'static str| {
        let (redis, store) = (redis.to_owned(), store.map(str::to_owned));
        move |s: &mut switchboard::Settings| {
            s.broker = redis;
            s.node_id = name.into();
            if let Some(store) = store {
                s.store = store;
            }
        }
    };
    let a = TestServer::start_with(vec![manifest()], node("node-a")).await;
    let b = TestServer::start_with(vec![manifest()], node("node-b")).await;
    (a, b)
}

/// Subscribes and waits until the node's broker took the interest (a cross-node publish in
/// the moment before would miss it, as the broker contract says).
async fn join(client: &mut Client, channel: &str) {
    let reply = client.request("subscribe", json!({ "channel": channel })).await;
    assert_eq!(reply["type"], "reply", "{reply}");
}

#[tokio::test]
async fn a_publish_on_one_node_reaches_subscribers_on_every_node() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let (a, b) = two_nodes(&redis, None).await;
    // Users and channels of their own: the Redis server is shared by every test.
    let mut on_a = a.connect("lobby-ann").await;
    let mut on_b = b.connect("lobby-bob").await;
    join(&mut on_a, "room:lobby").await;
    join(&mut on_b, "room:lobby").await;
    // The subscribe replies came after Redis took the interest, so nothing can be missed.
    for n in 0..50 {
        let node = if n % 2 == 0 { &a } else { &b };
        let body = json!({"channels": ["room:lobby"], "type": "marker", "data": n});
        let (status, _) = node.api("POST", "/api/v1/apps/app1/publish", Some(API_KEY), Some(body)).await;
        assert_eq!(status, 200);
        let seen_a = on_a.expect("marker").await;
        let seen_b = on_b.expect("marker").await;
        assert_eq!((seen_a, seen_b), (json!(n), json!(n)), "both nodes get every event, in order");
    }
    assert!(on_a.connected["connection_id"].as_str().unwrap().starts_with("node-a-"));
    assert!(on_b.connected["connection_id"].as_str().unwrap().starts_with("node-b-"));
}

#[tokio::test]
async fn user_channels_cross_nodes_with_a_shared_store() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&redis, Some(&store)).await;
    let mut phone = a.connect("cross-ann").await;
    let mut laptop = b.connect("cross-ann").await;
    // `connected` comes after Redis took the interest of the user's channel on both nodes.
    for node in [&a, &b] {
        let body = json!({"user": "cross-ann", "title": "hello", "message": "from a node"});
        let (status, _) = node.api("POST", "/api/v1/apps/app1/notifications", Some(API_KEY), Some(body)).await;
        assert_eq!(status, 201);
        for client in [&mut phone, &mut laptop] {
            assert_eq!(client.expect("notification:new").await["title"], "hello");
            client.expect("notification:count").await;
        }
    }
}

#[tokio::test]
async fn disconnecting_a_user_closes_their_connections_on_every_node() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let (a, b) = two_nodes(&redis, None).await;
    let mut on_a = a.connect("kicked").await;
    let mut on_b = b.connect("kicked").await;
    let mut bystander = b.connect("stays").await;
    let (status, answer) = a.api("DELETE", "/api/v1/apps/app1/users/kicked/connections", Some(API_KEY), None).await;
    assert_eq!((status, answer["disconnected"].clone()), (200, json!(1)), "the count is this node's");
    for client in [&mut on_a, &mut on_b] {
        let (_, closed) = client.closed().await;
        assert_eq!(closed.code, 4403, "closed on every node");
    }
    bystander.assert_alive().await;
}

#[tokio::test]
async fn an_event_stored_but_never_published_still_reaches_subscribers_in_order() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&redis, Some(&store)).await;
    let mut laptop = b.connect("gap-ann").await;
    let marker = |data: &str| json!({"channels": ["user:gap-ann"], "type": "marker", "data": data});
    a.publish(marker("before")).await;
    // A node killed between its commit and its publish leaves an event stored, never sent.
    use switchboard_store::Store as _;
    let crashed = switchboard_store::PgStore::open(&store).await.unwrap();
    let lost = switchboard_store::HistoryAppend {
        app: "app1".into(),
        channel: "user:gap-ann".into(),
        id: "lost".into(),
        kind: "marker".into(),
        data: "\"lost\"".into(),
        ts: 1,
        size: 1000,
        ttl: std::time::Duration::from_secs(3600),
    };
    crashed.append_history(&[lost]).await.unwrap();
    a.publish(marker("after")).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = laptop.next_json().await;
        seen.push((event["seq"].as_u64().unwrap(), event["data"].as_str().unwrap().to_owned()));
    }
    let want = [(1, "before"), (2, "lost"), (3, "after")].map(|(s, d)| (s, d.to_owned()));
    assert_eq!(seen, want, "the receiving node read the hole from the store");
}

#[tokio::test]
async fn two_nodes_publishing_to_one_channel_deliver_every_event_once_in_seq_order() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&redis, Some(&store)).await;
    let mut on_a = a.connect("race-ann").await;
    let mut on_b = b.connect("race-ann").await;
    const EACH: u64 = 60;
    async fn burst(node: &TestServer) {
        for n in 0..EACH {
            node.publish(json!({"channels": ["user:race-ann"], "type": "marker", "data": n})).await;
        }
    }
    tokio::join!(burst(&a), burst(&b));
    for client in [&mut on_a, &mut on_b] {
        let mut seqs = Vec::new();
        for _ in 0..2 * EACH {
            seqs.push(client.next_json().await["seq"].as_u64().unwrap());
        }
        assert_eq!(seqs, (1..=2 * EACH).collect::<Vec<_>>(), "contiguous, ascending, none twice");
    }
}
