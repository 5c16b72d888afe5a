//! Several nodes over Redis, and over NATS: a publish on any node reaches every subscriber on every node,
//! in seq order; counts, connection lists, disconnects and presence span the nodes. (Killing
//! a node is in tests/failover.rs, with real processes.)

use std::time::Duration;

use serde_json::{json, Value};

use switchboard_broker::fault::FaultProxy;

use crate::support::{manifest, presence_manifest, Client, TestServer, API_KEY, WAIT};

/// The broker a cluster test runs on.
#[derive(Debug, Clone, Copy)]
enum Bus {
    Redis,
    Nats,
}

impl Bus {
    /// The test server's URL; `None` (skip) when it is not configured.
    fn url(self) -> Option<String> {
        match self {
            Bus::Redis => switchboard_broker::testing::redis_url(),
            Bus::Nats => switchboard_broker::testing::nats_url(),
        }
    }
}

/// One `#[tokio::test]` per broker for each `async fn name(Bus)` named.
macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(super::Bus::Redis).await })*
        }
        mod nats {
            $(#[tokio::test] async fn $name() { super::$name(super::Bus::Nats).await })*
        }
    };
}

on_both_brokers!(
    a_publish_on_one_node_reaches_subscribers_on_every_node,
    user_channels_cross_nodes_with_a_shared_store,
    disconnecting_a_user_closes_their_connections_on_every_node,
    an_event_for_one_connection_reaches_it_on_any_node,
    an_event_stored_but_never_published_still_reaches_subscribers_in_order,
    a_gap_longer_than_a_page_is_filled_whole_and_in_order,
    a_gap_history_no_longer_has_makes_its_subscribers_resync,
    two_nodes_publishing_to_one_channel_deliver_every_event_once_in_seq_order,
    counts_and_a_users_connections_span_every_node,
    presence_spans_nodes_and_only_the_last_connection_anywhere_makes_a_user_offline,
    members_added_or_removed_on_one_node_apply_at_once_on_every_node,
    a_node_cut_off_from_its_broker_fails_readyz_and_gets_what_it_missed_when_back,
    a_publish_committed_while_its_node_is_cut_off_is_acknowledged_once_and_still_delivered,
);

/// Nodes of one cluster for `manifest`, on one broker server (under a prefix of their own:
/// every test shares the server) and, with `store`, one store.
const ADMIN_TOKEN: &str = "cluster-admin-token-0123";

async fn cluster(server: &str, store: Option<&str>, manifest: Value, names: &[&str]) -> Vec<TestServer> {
    let broker = format!("{server}?channel_prefix=t{:016x}", rand::random::<u64>());
    let mut nodes = Vec::new();
    for name in names {
        let (broker, store, name) = (broker.clone(), store.map(str::to_owned), name.to_string());
        let node = TestServer::start_with(vec![manifest.clone()], move |s| {
            s.broker = broker;
            s.node_id = name;
            s.admin_token = Some(ADMIN_TOKEN.into());
            if let Some(store) = store {
                s.store = store;
            }
        })
        .await;
        nodes.push(node);
    }
    nodes
}

/// Two nodes of the test manifest.
async fn two_nodes(server: &str, store: Option<&str>) -> (TestServer, TestServer) {
    let mut nodes = cluster(server, store, manifest(), &["node-a", "node-b"]).await;
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}

/// Waits (bounded) until every node lists every other: their heartbeats arrived.
async fn acquainted(nodes: &[&TestServer]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for node in nodes {
        loop {
            let (_, counts) = node.api("GET", "/api/v1/apps/app1/connections", Some(API_KEY), None).await;
            if counts["nodes"].as_array().map_or(0, Vec::len) == nodes.len() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no heartbeats from the other nodes: {counts}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Subscribes and waits until the node's broker took the interest (a cross-node publish in
/// the moment before would miss it, as the broker contract says).
async fn join(client: &mut Client, channel: &str) {
    let reply = client.request("subscribe", json!({ "channel": channel })).await;
    assert_eq!(reply["type"], "reply", "{reply}");
}

async fn a_publish_on_one_node_reaches_subscribers_on_every_node(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let (a, b) = two_nodes(&broker, None).await;
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
    // Each node timed every event its subscriber got, half of them published on the other
    // node: the publish time crossed the broker.
    let app = "app=\"app1\"";
    for node in [&a, &b] {
        assert_eq!(node.metric_until("switchboard_events_published_total", &[app], |n| n == 25.0).await, 25.0);
        assert_eq!(node.metric_until("switchboard_delivery_latency_seconds_count", &[app], |n| n == 50.0).await, 50.0);
    }
    // The console's traffic covers both nodes, from their heartbeats.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = reqwest::Client::new().get(a.url("/admin/api/overview")).bearer_auth(ADMIN_TOKEN).send().await;
        let overview: Value = response.unwrap().json().await.unwrap();
        let traffic = &overview["apps"][0]["traffic"];
        let nodes: Vec<&str> =
            traffic["nodes"].as_array().unwrap().iter().map(|n| n["node_id"].as_str().unwrap()).collect();
        let both_delivered =
            traffic["nodes"].as_array().unwrap().iter().all(|n| n["traffic"]["delivered_per_sec"].as_f64() > Some(0.0));
        if nodes == ["node-a", "node-b"] && both_delivered && traffic["p99_ms"].is_number() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no traffic from both nodes: {traffic}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn user_channels_cross_nodes_with_a_shared_store(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&broker, Some(&store)).await;
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

async fn disconnecting_a_user_closes_their_connections_on_every_node(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let (a, b) = two_nodes(&broker, None).await;
    let mut on_a = a.connect("kicked").await;
    let mut on_b = b.connect("kicked").await;
    let mut bystander = b.connect("stays").await;
    acquainted(&[&a, &b]).await;
    let (status, answer) = a.api("DELETE", "/api/v1/apps/app1/users/kicked/connections", Some(API_KEY), None).await;
    assert_eq!((status, answer["disconnected"].clone()), (200, json!(2)), "counted on every node");
    for client in [&mut on_a, &mut on_b] {
        let (_, closed) = client.closed().await;
        assert_eq!(closed.code, 4403, "closed on every node");
    }
    bystander.assert_alive().await;
}

async fn an_event_for_one_connection_reaches_it_on_any_node(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let (a, b) = two_nodes(&broker, None).await;
    let mut phone = b.connect("pat").await;
    let phone_id = phone.connected["connection_id"].as_str().unwrap().to_owned();
    let mut laptop = a.connect("pat").await;
    acquainted(&[&a, &b]).await;
    let path = format!("/api/v1/apps/app1/connections/{phone_id}/events");
    let (status, answer) = a.api("POST", &path, Some(API_KEY), Some(json!({"type": "ring", "data": 1}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(phone.expect("ring").await, 1, "sent through node-a to node-b");
    laptop.assert_alive().await;
    let gone = "/api/v1/apps/app1/connections/node-b-00000000000000000000000000000000/events";
    assert_eq!(a.api("POST", gone, Some(API_KEY), Some(json!({"type": "ring"}))).await.0, 404);
}

async fn an_event_stored_but_never_published_still_reaches_subscribers_in_order(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&broker, Some(&store)).await;
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

/// `count` events of `channel` stored but never published, as a node cut off from the broker
/// (or killed between its commits and its publishes) leaves them; `size` is the history's.
async fn store_unpublished(store: &str, channel: &str, count: u64, size: u32) {
    use switchboard_store::Store as _;
    let cut_off = switchboard_store::PgStore::open(store).await.unwrap();
    let events: Vec<_> = (0..count)
        .map(|n| switchboard_store::HistoryAppend {
            app: "app1".into(),
            channel: channel.into(),
            id: format!("unpublished-{n}"),
            kind: "marker".into(),
            data: format!("\"u{n}\""),
            ts: 1,
            size,
            ttl: std::time::Duration::from_secs(3600),
        })
        .collect();
    for chunk in events.chunks(500) {
        cut_off.append_history(chunk).await.unwrap();
    }
}

/// Two nodes whose user channels keep `size` events.
async fn two_nodes_keeping(broker: &str, store: &str, size: u32) -> (TestServer, TestServer) {
    let mut app = manifest();
    app["history"] = json!({"user": {"size": size}});
    let mut nodes = cluster(broker, Some(store), app, &["node-a", "node-b"]).await;
    let b = nodes.pop().unwrap();
    (nodes.pop().unwrap(), b)
}

async fn a_gap_longer_than_a_page_is_filled_whole_and_in_order(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes_keeping(&broker, &store, 5_000).await;
    let mut laptop = b.connect("long-gap").await;
    a.publish(json!({"channels": ["user:long-gap"], "type": "marker", "data": "before"})).await;
    // 2,500 events node-b never heard of (a history page holds 1,000), then one it does hear.
    store_unpublished(&store, "user:long-gap", 2_500, 5_000).await;
    a.publish(json!({"channels": ["user:long-gap"], "type": "marker", "data": "after"})).await;
    let mut seqs = Vec::new();
    while seqs.len() < 2_502 {
        let event = laptop.next_json().await;
        seqs.push(event["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (1..=2_502).collect::<Vec<_>>(), "every event, once, in order: none skipped");
}

async fn a_gap_history_no_longer_has_makes_its_subscribers_resync(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes_keeping(&broker, &store, 100).await;
    let mut laptop = b.connect("trimmed").await;
    a.publish(json!({"channels": ["user:trimmed"], "type": "marker", "data": "before"})).await;
    let first = laptop.next_json().await;
    assert_eq!(first["seq"], 1);
    // 300 events node-b never heard of: history keeps the last 100, so 200 are gone.
    store_unpublished(&store, "user:trimmed", 300, 100).await;
    a.publish(json!({"channels": ["user:trimmed"], "type": "marker", "data": "after"})).await;
    let (frames, closed) = laptop.closed().await;
    assert_eq!(closed.code, 4009, "told to resync: {closed:?}");
    let seqs: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, Vec::<u64>::new(), "nothing past the hole goes out before the close: {frames:?}");
    // Resuming from its last position reports the channel as not recovered.
    let token = b.token("trimmed", json!({}));
    let mut again = b.connect_query(&token, "resume=1").await;
    let position = json!({"epoch": first["epoch"], "seq": 1});
    again.send(json!({"type": "resume", "ref": 1, "data": {"positions": {"user:trimmed": position}}})).await;
    let resumed = again.expect("resumed").await;
    assert_eq!(resumed["data"]["recovered"], false, "{resumed}");
    assert_eq!(resumed["data"]["unrecovered"], json!(["user:trimmed"]), "{resumed}");
}

async fn two_nodes_publishing_to_one_channel_deliver_every_event_once_in_seq_order(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let (a, b) = two_nodes(&broker, Some(&store)).await;
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

async fn counts_and_a_users_connections_span_every_node(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let (a, b) = two_nodes(&broker, None).await;
    let _phone = a.connect("span-ann").await;
    let _laptop = b.connect("span-ann").await;
    let _other = b.connect("span-bob").await;
    acquainted(&[&a, &b]).await;
    // Heartbeats carry the counts; wait for one sent after the connections opened.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let (_, counts) = a.api("GET", "/api/v1/apps/app1/connections", Some(API_KEY), None).await;
        if counts["total"] == 3 || tokio::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(counts["total"], 3, "{counts}");
    assert_eq!(counts["node_id"], "node-a");
    let per_node: Vec<(Value, Value)> = counts["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node_id"].clone(), n["counts"]["total"].clone()))
        .collect();
    assert_eq!(per_node, [(json!("node-a"), json!(1)), (json!("node-b"), json!(2))]);
    let (_, list) = b.api("GET", "/api/v1/apps/app1/users/span-ann/connections", Some(API_KEY), None).await;
    let mut ids: Vec<&str> =
        list["connections"].as_array().unwrap().iter().map(|c| c["connection_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids[0].starts_with("node-a-") && ids[1].starts_with("node-b-"), "{ids:?}");
}

async fn presence_spans_nodes_and_only_the_last_connection_anywhere_makes_a_user_offline(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let nodes = cluster(&broker, None, presence_manifest(), &["node-a", "node-b"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let member = |user: &str, node: &TestServer| node.token(user, json!({"groups": ["team"]}));
    let mut watcher = b.connect_token(&member("pw-watch", b)).await;
    assert_eq!(watcher.expect("presence:online").await["userKey"], "pw-watch", "its own, through the group");
    acquainted(&[a, b]).await;
    let phone = a.connect_token(&member("pw-ann", a)).await;
    let online = watcher.expect("presence:online").await;
    assert_eq!(online["userKey"], "pw-ann", "announced by node-a, heard on node-b");
    let mut laptop = b.connect_token(&member("pw-ann", b)).await;
    laptop.send(json!({"type": "presence:set", "data": {"status": "away"}})).await;
    assert_eq!(watcher.expect("presence:away").await["userKey"], "pw-ann");
    async fn status(node: &TestServer) -> Value {
        let url = "/api/v1/apps/app1/presence?users=pw-ann";
        node.api("GET", url, Some(API_KEY), None).await.1["presence"]["pw-ann"]["status"].clone()
    }
    /// The other node learns of a change a moment after the announcing node's own subscribers.
    async fn settles_at(node: &TestServer, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while status(node).await != want {
            assert!(tokio::time::Instant::now() < deadline, "presence stayed {} on a node", status(node).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    settles_at(a, "away").await; // a status set on node-b holds on node-a
    drop(phone);
    // Past node-a's grace (1 s): ann still has her laptop on node-b, so nobody hears offline.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    watcher.assert_alive().await;
    assert_eq!(status(a).await, "away", "node-a knows she is on node-b");
    drop(laptop);
    let offline = watcher.expect("presence:offline").await;
    assert_eq!(offline["userKey"], "pw-ann");
    settles_at(a, "offline").await;
}

async fn members_added_or_removed_on_one_node_apply_at_once_on_every_node(bus: Bus) {
    let Some(broker) = bus.url() else { return };
    let (a, b) = two_nodes(&broker, None).await;
    let mut bob = b.connect("mem-bob").await;
    acquainted(&[&a, &b]).await;
    let path = "/api/v1/apps/app1/channels/group:mem-fam/members/mem-bob";
    let (status, answer) = a.api("PUT", path, Some(API_KEY), None).await;
    assert_eq!((status, answer["added"].clone()), (200, json!(true)));
    // The answer came after node-b subscribed bob's connection and its broker took it.
    a.publish(json!({"channels": ["group:mem-fam"], "type": "family", "data": 1})).await;
    assert_eq!(bob.expect("family").await, 1);
    let (status, _) = a.api("DELETE", path, Some(API_KEY), None).await;
    assert_eq!(status, 200);
    a.publish(json!({"channels": ["group:mem-fam"], "type": "family", "data": 2})).await;
    a.publish(json!({"channels": ["user:mem-bob"], "type": "marker", "data": 3})).await;
    // One node's publishes reach another in order, so the marker proves the family event is not coming.
    assert_eq!(bob.expect("marker").await, 3, "removed on node-b too");
}

/// Waits (bounded) until `node`'s /readyz answers `status`; returns its body.
async fn readyz_becomes(node: &TestServer, status: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = node.api("GET", "/readyz", None, None).await;
        if got == status {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz stayed {got} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// node-b reaches the broker through a proxy that goes silent (a partition): it notices,
/// /readyz fails with the reason, and when the path heals it gets what it missed: the
/// events of a channel with history (more than a page, with no later event to reveal the
/// gap), a disconnect asked meanwhile, and a membership added meanwhile.
/// node-a on the broker, node-b through a proxy that can cut it off; one PostgreSQL store, user
/// channels keeping 5,000 events. `None` (skip) without a broker or PostgreSQL.
async fn cut_off_pair(bus: Bus) -> Option<(FaultProxy, TestServer, TestServer)> {
    let server = bus.url()?;
    let store = switchboard_store::testing::postgres_database().await?;
    let address = server.split_once("://").unwrap().1.trim_end_matches('/').to_owned();
    let proxy = FaultProxy::start(&address).await.unwrap();
    let prefix = format!("?channel_prefix=t{:016x}", rand::random::<u64>());
    let mut app = manifest();
    app["history"] = json!({"user": {"size": 5_000}});
    let node = |broker: String, name: &'static str| {
        let (app, store) = (app.clone(), store.clone());
        TestServer::start_with(vec![app], move |s| {
            (s.broker, s.node_id, s.store) = (broker, name.into(), store);
        })
    };
    let a = node(format!("{server}{prefix}"), "node-a").await;
    let b = node(format!("{}{prefix}", server.replace(&address, &proxy.addr().to_string())), "node-b").await;
    Some((proxy, a, b))
}

/// node-b reaches the broker through a proxy that goes silent (a partition): it notices,
/// /readyz fails with the reason, and when the path heals it gets what it missed: the
/// events of a channel with history (more than a page, with no later event to reveal the
/// gap), a disconnect asked meanwhile, and a membership added meanwhile.
async fn a_node_cut_off_from_its_broker_fails_readyz_and_gets_what_it_missed_when_back(bus: Bus) {
    let Some((proxy, a, b)) = cut_off_pair(bus).await else { return };
    let (mut reader, mut kicked, mut joiner) =
        (b.connect("cut-ann").await, b.connect("cut-kicked").await, b.connect("cut-joiner").await);
    acquainted(&[&a, &b]).await;
    assert_eq!(readyz_becomes(&b, 200).await["status"], "ready");

    proxy.cut();
    let unready = readyz_becomes(&b, 503).await;
    assert_eq!(unready["status"], "unready", "{unready}");
    assert!(unready["problems"][0].as_str().unwrap().starts_with("broker:"), "{unready}");
    let events: Vec<Value> =
        (0..1_200).map(|n| json!({"channels": ["user:cut-ann"], "type": "n", "data": n})).collect();
    for batch in events.chunks(100) {
        assert_eq!(a.publish_batch(batch.to_vec()).await, 200);
    }
    a.api("DELETE", "/api/v1/apps/app1/users/cut-kicked/connections", Some(API_KEY), None).await;
    let members = "/api/v1/apps/app1/channels/group:cut-fam/members/cut-joiner";
    assert_eq!(a.api("PUT", members, Some(API_KEY), None).await.0, 200);

    proxy.heal();
    readyz_becomes(&b, 200).await;
    let mut seqs = Vec::new();
    while seqs.len() < 1_200 {
        seqs.push(reader.next_json().await["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (1..=1_200).collect::<Vec<_>>(), "every missed event, once, in order");
    assert_eq!(kicked.closed().await.1.code, 4403, "the disconnect asked during the outage");
    // The membership is replayed in the moments after the reconnection: publish until it is.
    for n in 0..50 {
        a.publish(json!({"channels": ["group:cut-fam"], "type": "family", "data": n})).await;
        let got = tokio::time::timeout(Duration::from_millis(200), joiner.expect("family")).await;
        if got.is_ok() {
            return;
        }
    }
    panic!("the membership added during the outage never reached node-b");
}

/// node-b is cut off from the broker while it publishes with an idempotency key: the event is
/// committed, so the publish is acknowledged with its position (a 503 made the publisher
/// retry and store it twice); a repeat while it is in flight is asked to retry instead of
/// answered without positions; and the event reaches node-a's subscriber once the path heals,
/// with no later event to reveal it.
async fn a_publish_committed_while_its_node_is_cut_off_is_acknowledged_once_and_still_delivered(bus: Bus) {
    let Some((proxy, a, b)) = cut_off_pair(bus).await else { return };
    let mut far = a.connect("once").await;
    acquainted(&[&a, &b]).await;
    proxy.cut();
    let body = json!({"channels": ["user:once"], "type": "t", "data": 1, "idempotency_key": "k-once"});
    let history = "/api/v1/apps/app1/channels/user:once/history";
    let repeat_in_flight = async {
        // The event is in history once committed; node-b then waits on the silent broker.
        let deadline = tokio::time::Instant::now() + WAIT;
        while a.api("GET", history, Some(API_KEY), None).await.1["events"].as_array().is_none_or(Vec::is_empty) {
            assert!(tokio::time::Instant::now() < deadline, "node-b never committed the event");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.api("POST", "/api/v1/apps/app1/publish", Some(API_KEY), Some(body.clone())).await
    };
    let (first, repeat) =
        tokio::join!(b.api("POST", "/api/v1/apps/app1/publish", Some(API_KEY), Some(body.clone())), repeat_in_flight);
    assert_eq!(repeat.0, 503, "in flight: retry, not done without positions: {repeat:?}");
    assert_eq!(first.0, 200, "committed, so acknowledged: {first:?}");
    assert_eq!(first.1["positions"]["user:once"]["seq"], 1, "{first:?}");
    let again = a.api("POST", "/api/v1/apps/app1/publish", Some(API_KEY), Some(body)).await;
    assert_eq!((again.0, &again.1["positions"]), (200, &first.1["positions"]), "the same answer");
    let (_, page) = a.api("GET", history, Some(API_KEY), None).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "stored once: {page}");
    proxy.heal();
    let event = far.next_json().await;
    assert_eq!(
        (event["seq"].as_u64(), event["data"].as_u64()),
        (Some(1), Some(1)),
        "published again once the broker took it"
    );
}
