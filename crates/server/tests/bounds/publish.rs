//! Publishing what no subscriber could take, and faster than the store can commit: refused
//! at the door (413, 400, 503 with Retry-After), with subscribers untouched and nothing
//! stored that was refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{manifest, Server, KEY, WAIT};

/// A native client, connected as one user (auto-subscribed to `user:{user}`).
struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    connection_id: String,
}

impl Client {
    async fn connect(server: &Server, user: &str) -> Self {
        let url = server.ws(&format!("/ws?token={}", server.token(user)));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
        let mut client = Self { ws, connection_id: String::new() };
        let connected = client.next().await;
        assert_eq!(connected["type"], "connected", "{connected}");
        client.connection_id = connected["data"]["connection_id"].as_str().unwrap().to_owned();
        client
    }

    /// The next JSON frame; panics on a close or after [`WAIT`].
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame within the bound");
            match message {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Close(close))) => panic!("closed: {close:?}"),
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    }

    /// Skips frames until one of type `kind`.
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The frame that answers the request with this `ref`.
    async fn answer_to(&mut self, reference: usize) -> Value {
        loop {
            let frame = self.next().await;
            if frame["ref"] == reference {
                return frame;
            }
        }
    }

    async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.unwrap();
    }
}

/// `POST /api/v1/apps/bounds{path}` with the key; status, `Retry-After`, body.
async fn post(server: &Server, path: &str, body: &Value) -> (u16, Option<String>, Value) {
    let url = format!("{}/api/v1/apps/bounds{path}", server.base);
    let response = server.http.post(url).bearer_auth(KEY).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (status, retry, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Every event of `channel`'s history, oldest first.
async fn history(server: &Server, channel: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let since = events.last().map_or(0, |e: &Value| e["seq"].as_u64().unwrap());
        let url = format!("{}/api/v1/apps/bounds/channels/{channel}/history?since={since}&limit=1000", server.base);
        let page: Value = server.http.get(url).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
        let got = page["events"].as_array().unwrap().clone();
        if got.is_empty() {
            return events;
        }
        events.extend(got);
    }
}

/// A JSON body with `data` nested `depth` arrays deep, as raw text (serde_json refuses to
/// build values deeper than 127 levels).
fn with_deep_data(template: &Value, depth: usize) -> String {
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    template.to_string().replace("\"DEEP\"", &deep)
}

async fn post_raw(server: &Server, path: &str, body: String) -> (u16, Value) {
    let url = format!("{}/api/v1/apps/bounds{path}", server.base);
    let response = server.http.post(url).bearer_auth(KEY).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_event_larger_than_any_queue_is_refused_and_subscribers_keep_their_connections() {
    let server = Server::start(manifest()).await;
    let mut alice = Client::connect(&server, "alice").await;
    let big = json!({"channels": ["user:alice"], "type": "big", "data": "x".repeat(1_200_000)});
    let (status, _, answer) = post(&server, "/publish", &big).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    assert!(answer["error"]["message"].as_str().unwrap().contains("outbox_max_bytes"), "{answer}");
    // Two halves in one batch would land in one queue together: refused as a whole.
    let half = json!({"channels": ["user:alice"], "type": "half", "data": "x".repeat(600_000)});
    let (status, _, answer) = post(&server, "/publish/batch", &json!({"events": [half, half]})).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("user:alice"), "{answer}");
    // The subscriber is still connected and gets the next event; history holds only that.
    let small = json!({"channels": ["user:alice"], "type": "small", "data": {"n": 1}});
    assert_eq!(post(&server, "/publish", &small).await.0, 200);
    assert_eq!(alice.next_of("small").await["data"]["n"], 1);
    let kept = history(&server, "user:alice").await;
    let kinds: Vec<&str> = kept.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["small"], "refused events must not be stored");
}

#[tokio::test]
async fn data_nested_deeper_than_the_limit_is_refused_naming_the_field() {
    let server = Server::start(manifest()).await;
    let alice = Client::connect(&server, "alice").await;
    let publish = json!({"channels": ["user:alice"], "type": "deep", "data": "DEEP"});
    let deep = 10_000;
    let direct = format!("/connections/{}/events", alice.connection_id);
    let cases = [
        ("/publish", with_deep_data(&publish, deep), "field `data`"),
        (
            "/publish/batch",
            with_deep_data(&json!({"events": [{"channels": ["user:alice"], "type": "ok"}, publish]}), deep),
            "events[1]: field `data`",
        ),
        (direct.as_str(), with_deep_data(&json!({"type": "deep", "data": "DEEP"}), deep), "field `data`"),
        (
            "/notifications",
            with_deep_data(&json!({"user": "alice", "title": "t", "message": "m", "data": "DEEP"}), deep),
            "field `data`",
        ),
        (
            "/alerts",
            with_deep_data(
                &json!({"group": "g", "title": "t", "message": "m", "severity": "info", "data": "DEEP"}),
                deep,
            ),
            "field `data`",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = post_raw(&server, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field) && message.contains("100"), "{path}: {message}");
    }
    // As deep as data may be passes, everywhere; one level more does not.
    assert_eq!(post_raw(&server, "/publish", with_deep_data(&publish, 100)).await.0, 200);
    assert_eq!(post_raw(&server, "/publish", with_deep_data(&publish, 101)).await.0, 400);
    let notification = json!({"user": "alice", "title": "t", "message": "m", "data": "DEEP"});
    assert_eq!(post_raw(&server, "/notifications", with_deep_data(&notification, 100)).await.0, 201);
    assert_eq!(post_raw(&server, "/notifications", with_deep_data(&notification, 101)).await.0, 400);
    let kept = history(&server, "user:alice").await;
    assert_eq!(kept.iter().filter(|e| e["type"] == "deep").count(), 1, "only the accepted publish is stored");
    assert_eq!(kept.iter().filter(|e| e["type"] == "notification:new").count(), 1, "and notification");
}

/// What the flood's accepted publishes were given: `(channel, seq, id)`.
type Accepted = Vec<(String, u64, String)>;

/// One worker: batches of durable events to 50 channels, alternating with single publishes,
/// until `stop` or its share of requests is done. Counts 503s into `shed` and checks each.
async fn flood_worker(base: String, worker: usize, stop: Arc<AtomicBool>, shed: Arc<AtomicUsize>) -> Accepted {
    let http = reqwest::Client::new();
    let mut accepted = Vec::new();
    for round in 0..300 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let events: Vec<Value> = match round % 2 {
            0 => (0..50)
                .map(|c| json!({"channels": [format!("user:f{c}")], "type": "flood", "data": {"w": worker}}))
                .collect(),
            _ => vec![json!({"channels": [format!("user:f{worker}")], "type": "single", "data": {"w": worker}})],
        };
        let (path, body) = match events.len() {
            1 => ("publish", events[0].clone()),
            _ => ("publish/batch", json!({ "events": events })),
        };
        let url = format!("{base}/api/v1/apps/bounds/{path}");
        let response = http.post(url).bearer_auth(KEY).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let answer: Value = response.json().await.unwrap();
        match status {
            200 => {
                let results = answer.get("results").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![answer]);
                for (event, result) in events.iter().zip(results) {
                    let channel = event["channels"][0].as_str().unwrap().to_owned();
                    let seq = result["positions"][&channel]["seq"].as_u64().unwrap();
                    accepted.push((channel, seq, result["id"].as_str().unwrap().to_owned()));
                }
            }
            503 => {
                assert_eq!(retry.as_deref(), Some("1"), "a shed publish says when to retry: {answer}");
                assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
                shed.fetch_add(1, Ordering::Relaxed);
            }
            other => panic!("publish answered {other}: {answer}"),
        }
    }
    accepted
}

#[tokio::test]
async fn publishing_faster_than_the_store_commits_is_shed_with_503_and_every_200_is_kept() {
    let mut manifest = manifest();
    manifest["history"] = json!({"user": {"size": 100_000, "ttl": "1h"}});
    let server = Server::start_with(manifest, &["--history-queue", "100"]).await;
    let mut alice = Client::connect(&server, "alice").await;
    let baseline = server.rss_mib();
    let (stop, shed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let mut workers = JoinSet::new();
    for worker in 0..16 {
        workers.spawn(flood_worker(server.base.clone(), worker, stop.clone(), shed.clone()));
    }
    // Meanwhile, notifications: stored, then pushed even when the queue is full.
    let started = Instant::now();
    let mut notified = 0;
    while started.elapsed() < Duration::from_secs(4) && (notified < 20 || shed.load(Ordering::Relaxed) < 50) {
        let body = json!({"user": "alice", "title": "t", "message": format!("n{notified}")});
        let (status, _, answer) = post(&server, "/notifications", &body).await;
        assert_eq!(status, 201, "{answer}");
        notified += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut accepted = Vec::new();
    while let Some(part) = workers.join_next().await {
        accepted.extend(part.unwrap());
    }
    let shed = shed.load(Ordering::Relaxed);
    println!("flood: {} events accepted, {shed} requests shed, {notified} notifications", accepted.len());
    assert!(shed > 0, "no publish was shed: the sequencer's queue is not bounded");
    server.assert_within("durable publish flood", baseline, 64.0);
    // Every publish that got 200 is in history, at the position it was given.
    let mut by_channel: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for (channel, seq, id) in accepted {
        by_channel.entry(channel).or_default().push((seq, id));
    }
    for (channel, expected) in by_channel {
        let kept: HashMap<u64, String> = history(&server, &channel)
            .await
            .into_iter()
            .map(|e| (e["seq"].as_u64().unwrap(), e["id"].as_str().unwrap().to_owned()))
            .collect();
        for (seq, id) in expected {
            assert_eq!(kept.get(&seq), Some(&id), "{channel} seq {seq}: a publish answered 200 is not in history");
        }
    }
    // Every notification created was pushed, shed or not.
    for n in 0..notified {
        let event = alice.next_of("notification:new").await;
        assert_eq!(event["data"]["message"], format!("n{n}"));
    }
    let metrics = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_publishes_shed_total{") && l.contains("app=\"bounds\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(counted.is_some_and(|n| n >= shed as u64), "shed publishes are counted in /metrics:\n{metrics}");
}

#[tokio::test]
async fn chat_messages_refused_under_load_can_be_retried_and_are_not_stored() {
    let mut manifest = manifest();
    manifest["limits"] = json!({"messages_per_second": 1000, "burst": 1000});
    let server = Server::start_with(manifest, &["--history-queue", "100"]).await;
    let body = json!({"type": "direct", "participants": ["ann", "ben"], "created_by": "ann"});
    let (status, _, conversation) = post(&server, "/conversations", &body).await;
    assert!(status == 201 || status == 200, "{conversation}");
    let conversation = conversation["conversationId"].as_str().unwrap().to_owned();
    let mut ann = Client::connect(&server, "ann").await;
    // The store stalls, and a flood fills the history queue behind it.
    let stall = server.stall_store();
    let (stop, shed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let mut workers = JoinSet::new();
    for _ in 0..4 {
        workers.spawn(flood_behind_a_stall(server.base.clone(), stop.clone(), shed.clone()));
    }
    let full = async {
        while shed.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, full).await.expect("the flood fills the queue behind the stalled store");
    let send = |n: usize| json!({"type": "chat:send", "ref": n, "data": {"conversationId": conversation, "content": format!("m{n}"), "tempId": format!("t{n}")}});
    ann.send(send(0)).await;
    let refused = ann.answer_to(0).await;
    assert_ne!(refused["type"], "reply", "a chat message is refused while the queue is full: {refused}");
    assert_eq!(refused["data"]["code"], "unavailable", "a refusal the client may retry: {refused}");
    // The store recovers; the same message, sent again, is kept once.
    stop.store(true, Ordering::Relaxed);
    drop(stall);
    while workers.join_next().await.is_some() {}
    ann.send(send(1)).await;
    let sent = ann.answer_to(1).await;
    assert_eq!(sent["type"], "reply", "{sent}");
    println!("chat under load: refused while the store stalled, kept once after");
    let sent = 1;
    let url = format!("{}/api/v1/apps/bounds/me/conversations/{conversation}/messages?limit=100", server.base);
    let page: Value = server.http.get(url).bearer_auth(server.token("ann")).send().await.unwrap().json().await.unwrap();
    let stored = page["messages"].as_array().unwrap().len();
    assert_eq!(stored, sent, "exactly the messages answered with a reply are stored");
}

/// Publishes batches until `stop`, counting the ones shed with Retry-After. Behind a stalled
/// store a round may also fail outright once the store's busy timeout passes (503 without
/// Retry-After): also a refusal, and nothing is kept.
async fn flood_behind_a_stall(base: String, stop: Arc<AtomicBool>, shed: Arc<AtomicUsize>) {
    let http = reqwest::Client::new();
    let events: Vec<Value> =
        (0..50).map(|c| json!({"channels": [format!("user:f{c}")], "type": "flood", "data": {}})).collect();
    while !stop.load(Ordering::Relaxed) {
        let url = format!("{base}/api/v1/apps/bounds/publish/batch");
        let response = http.post(url).bearer_auth(KEY).json(&json!({ "events": events })).send().await.unwrap();
        match (response.status().as_u16(), response.headers().contains_key("retry-after")) {
            (503, true) => _ = shed.fetch_add(1, Ordering::Relaxed),
            (200 | 503, _) => {}
            (other, _) => panic!("a publish behind a stalled store answered {other}"),
        }
    }
}

/// `/readyz`'s status and body.
async fn readyz(server: &Server) -> (u16, Value) {
    let response = server.http.get(format!("{}/readyz", server.base)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `/readyz` (bounded) until it answers `status`; its body then.
async fn readyz_becomes(server: &Server, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, body) = readyz(server).await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_store_that_cannot_commit_fails_readyz_until_it_commits_again() {
    let server = Server::start_with(manifest(), &[]).await;
    readyz_becomes(&server, 200).await;
    // Commits wait behind another connection's write lock while publishes keep coming.
    let stall = server.stall_store();
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(flood_behind_a_stall(server.base.clone(), stop.clone(), Arc::default()));
    let unready = readyz_becomes(&server, 503).await;
    assert!(unready.to_string().contains("store"), "the store is named as the problem: {unready}");
    stop.store(true, Ordering::Relaxed);
    drop(stall);
    publisher.await.unwrap();
    readyz_becomes(&server, 200).await;
}
