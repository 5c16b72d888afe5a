//! Positions and history: `epoch` + `seq` on events of channels with history, durable
//! `user:` history that survives a restart, memory history, and the history route.

use serde_json::{json, Value};

use crate::support::{manifest, TestServer, API_KEY};

fn history_path(channel: &str, query: &str) -> String {
    format!("/api/v1/apps/app1/channels/{channel}/history?{query}")
}

#[tokio::test]
async fn user_events_carry_positions_and_history_returns_the_same_frames() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let mut received = Vec::new();
    for n in 1..=3 {
        let answer = server.publish(json!({"channels": ["user:u1"], "type": "t", "data": {"n": n}})).await;
        let event = client.next_json().await;
        assert_eq!(event["seq"], n, "seq counts the channel's events: {event}");
        assert_eq!(answer["positions"]["user:u1"], json!({"epoch": event["epoch"], "seq": n}));
        received.push(event);
    }
    let (status, page) = server.api("GET", &history_path("user:u1", "since=1"), Some(API_KEY), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["latest"].as_u64(), page["complete"].as_bool()), (Some(3), Some(true)));
    assert_eq!(page["epoch"], received[0]["epoch"]);
    assert_eq!(page["events"], json!(received[1..]), "history holds what the client got, byte for byte");
}

#[tokio::test]
async fn concurrent_publishes_get_distinct_positions_and_arrive_in_seq_order() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let mut client = server.connect("u1").await;
    let publishes = (0..40).map(|n| {
        let server = server.clone();
        tokio::spawn(async move { server.publish(json!({"channels": ["user:u1"], "type": "t", "data": n})).await })
    });
    let mut seqs: Vec<u64> = Vec::new();
    for publish in publishes.collect::<Vec<_>>() {
        seqs.push(publish.await.unwrap()["positions"]["user:u1"]["seq"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "every publish got its own seq");
    for expected in 1..=40 {
        assert_eq!(client.next_json().await["seq"], expected, "delivered in seq order");
    }
}

#[tokio::test]
async fn an_offline_users_durable_history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("hub.db").display());
    let with_store = |s: &mut switchboard::Settings| s.store = store.clone();
    let mut first = TestServer::start_with(vec![manifest()], with_store).await;
    let a = first.publish(json!({"channels": ["user:u1"], "type": "t", "data": "while away 1"})).await;
    first.publish(json!({"channels": ["user:u1"], "type": "t", "data": "while away 2"})).await;
    first.finish().await;

    let second = TestServer::start_with(vec![manifest()], with_store).await;
    let (_, page) = second.api("GET", &history_path("user:u1", "since=0"), Some(API_KEY), None).await;
    let data: Vec<&Value> = page["events"].as_array().unwrap().iter().map(|e| &e["data"]).collect();
    assert_eq!(data, [&json!("while away 1"), &json!("while away 2")]);
    let epoch = &a["positions"]["user:u1"]["epoch"];
    assert_eq!(&page["epoch"], epoch, "the epoch outlives the process");
    let next = second.publish(json!({"channels": ["user:u1"], "type": "t"})).await;
    assert_eq!(next["positions"]["user:u1"], json!({"epoch": epoch, "seq": 3}), "numbering continues");
}

#[tokio::test]
async fn namespaces_choose_their_history_and_rooms_keep_none_by_default() {
    let mut m = manifest();
    m["channels"]["feed"] = json!({"subscribe": "authenticated", "history": {"size": 2, "ttl": "1h"}});
    m["history"] = json!({"group": {"size": 0}});
    let server = TestServer::start_with(vec![m], |_| {}).await;
    for n in 1..=3 {
        server.publish(json!({"channels": ["feed:x"], "type": "t", "data": n})).await;
    }
    let (_, page) = server.api("GET", &history_path("feed:x", "since=0"), Some(API_KEY), None).await;
    let seqs: Vec<u64> = page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 3], "size 2 keeps the newest two");
    assert_eq!(page["complete"], false, "event 1 is gone, so history from 0 is incomplete");
    let (_, page) = server.api("GET", &history_path("feed:x", "since=1"), Some(API_KEY), None).await;
    assert_eq!(page["complete"], true);

    let mut client = server.connect_token(&server.token("u1", json!({"groups": ["fam"]}))).await;
    for channel in ["room:1", "group:fam", "broadcast"] {
        if channel == "room:1" {
            server.api("PUT", "/api/v1/apps/app1/channels/room:1/members/u1", Some(API_KEY), None).await;
        }
        let answer = server.publish(json!({"channels": [channel], "type": "t"})).await;
        assert_eq!(answer["positions"], json!({}), "{channel} keeps no history");
        let event = client.next_json().await;
        assert!(event.get("seq").is_none() && event.get("epoch").is_none(), "{event}");
        let (status, error) = server.api("GET", &history_path(channel, ""), Some(API_KEY), None).await;
        assert_eq!(status, 400, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("keeps no history"), "{error}");
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_positions() {
    let server = TestServer::start().await;
    let body = json!({"channels": ["user:u1"], "type": "t", "idempotency_key": "k1"});
    let first = server.publish(body.clone()).await;
    assert_eq!(first["positions"]["user:u1"]["seq"], 1);
    assert_eq!(server.publish(body).await, first);
}

#[tokio::test]
async fn bad_history_queries_say_what_is_wrong() {
    let server = TestServer::start().await;
    let cases = [
        (history_path("user:u1", "since=abc"), "`since`"),
        (history_path("user:u1", "limit=0"), "`limit`"),
        (history_path("user:u1", "limit=5000"), "`limit`"),
        (history_path("bogus", ""), "bogus"),
    ];
    for (path, names) in cases {
        let (status, body) = server.api("GET", &path, Some(API_KEY), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(names), "{path}: {body}");
    }
    let (status, _) = server.api("GET", &history_path("user:u1", ""), None, None).await;
    assert_eq!(status, 401);
    let (status, page) = server.api("GET", &history_path("user:u1", "since=0&epoch=other"), Some(API_KEY), None).await;
    assert_eq!((status, &page["complete"]), (200, &json!(false)), "another epoch's position is void");
}
