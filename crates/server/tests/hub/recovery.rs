//! Resume, `subscribe` with `since`, and device acknowledgements: every missed event once,
//! in order, and a clear `recovered: false` when that cannot be.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{manifest, Client, TestServer, API_KEY};

/// Publishes to `user:u1`; returns the event's position.
async fn publish_to_u1(server: &TestServer, n: u64) -> Value {
    let answer = server.publish(json!({"channels": ["user:u1"], "type": "t", "data": n})).await;
    answer["positions"]["user:u1"].clone()
}

/// Reads frames until `until` matches one; returns the events before it and that frame.
async fn read_until(client: &mut Client, until: &str) -> (Vec<Value>, Value) {
    let mut events = Vec::new();
    loop {
        let frame = client.next_json().await;
        if frame["type"] == until {
            return (events, frame);
        }
        events.push(frame);
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect()
}

#[tokio::test]
async fn resume_replays_what_a_reconnecting_client_missed_then_live_events_follow() {
    let server = TestServer::start().await;
    let token = server.token("u1", json!({}));
    let mut client = server.connect_token(&token).await;
    let first = publish_to_u1(&server, 1).await;
    assert_eq!(client.next_json().await["seq"], 1);
    drop(client);
    for n in 2..=4 {
        publish_to_u1(&server, n).await;
    }

    let mut client = server.connect_query(&token, "resume=1").await;
    // Published while the client is connected but has not resumed yet: held, not lost.
    publish_to_u1(&server, 5).await;
    let position = json!({"epoch": first["epoch"], "seq": 1});
    client.send(json!({"type": "resume", "ref": 7, "data": {"positions": {"user:u1": position}}})).await;
    let (replayed, resumed) = read_until(&mut client, "resumed").await;
    assert_eq!(seqs(&replayed), [2, 3, 4, 5], "missed events, in order, then the held one");
    assert_eq!(replayed[0]["data"], 2);
    assert_eq!(resumed["ref"], 7);
    assert_eq!(resumed["data"]["recovered"], true);
    assert_eq!(resumed["data"]["missed"], 4);
    assert_eq!(resumed["data"]["positions"]["user:u1"], json!({"epoch": first["epoch"], "seq": 5}));
    publish_to_u1(&server, 6).await;
    assert_eq!(client.next_json().await["seq"], 6, "live events follow the replay");
}

#[tokio::test]
async fn a_first_frame_other_than_resume_lets_held_events_flow() {
    let server = TestServer::start().await;
    let mut client = server.connect_query(&server.token("u1", json!({})), "resume=1").await;
    publish_to_u1(&server, 1).await;
    client.send(json!({"type": "ping", "ref": 1})).await;
    let event = client.next_json().await;
    assert_eq!(event["seq"], 1, "the held event goes out as soon as the client shows it will not resume");
    assert_eq!(client.next_json().await["type"], "pong");
}

#[tokio::test]
async fn events_outside_the_window_or_of_another_epoch_are_reported_not_recovered() {
    let mut m = manifest();
    m["history"] = json!({"user": {"size": 3}});
    let server = TestServer::start_with(vec![m], |_| {}).await;
    let token = server.token("u1", json!({}));
    let first = publish_to_u1(&server, 1).await;
    for n in 2..=6 {
        publish_to_u1(&server, n).await;
    }
    let mut client = server.connect_query(&token, "resume=1").await;
    let position = json!({"epoch": first["epoch"], "seq": 1});
    client.send(json!({"type": "resume", "data": {"positions": {"user:u1": position}}})).await;
    let (replayed, resumed) = read_until(&mut client, "resumed").await;
    assert!(replayed.is_empty(), "a partial replay would hide the gap: {replayed:?}");
    assert_eq!(resumed["data"]["recovered"], false);
    assert_eq!(resumed["data"]["unrecovered"], json!(["user:u1"]));
    assert_eq!(resumed["data"]["positions"]["user:u1"]["seq"], 6, "where to continue after a refetch");

    let stale = json!({"epoch": "0000000000000000", "seq": 5});
    let answer = client.request("resume", json!({"positions": {"user:u1": stale}})).await;
    assert_eq!((answer["type"].as_str(), &answer["data"]["recovered"]), (Some("resumed"), &json!(false)));
    publish_to_u1(&server, 7).await;
    assert_eq!(client.next_json().await["seq"], 7, "live events flow after an unrecovered resume");
}

#[tokio::test]
async fn subscribe_since_replays_one_channel_before_its_live_events() {
    let mut m = manifest();
    m["channels"]["feed"] = json!({"subscribe": "authenticated", "history": {"size": 10, "ttl": "1h"}});
    let server = TestServer::start_with(vec![m], |_| {}).await;
    let mut epoch = Value::Null;
    for n in 1..=3 {
        let answer = server.publish(json!({"channels": ["feed:x"], "type": "t", "data": n})).await;
        epoch = answer["positions"]["feed:x"]["epoch"].clone();
    }
    let mut client = server.connect("u1").await;
    let since = json!({"epoch": epoch, "seq": 1});
    client.send(json!({"type": "subscribe", "ref": "s", "data": {"channel": "feed:x", "since": since}})).await;
    let (replayed, reply) = read_until(&mut client, "reply").await;
    assert_eq!(seqs(&replayed), [2, 3]);
    assert_eq!(reply["data"]["channel"], "feed:x");
    assert_eq!((&reply["data"]["recovered"], &reply["data"]["missed"]), (&json!(true), &json!(2)));
    server.publish(json!({"channels": ["feed:x"], "type": "t", "data": 4})).await;
    assert_eq!(client.next_json().await["seq"], 4);
}

#[tokio::test]
async fn what_a_connection_already_got_live_is_not_replayed_and_a_gap_before_it_is_reported() {
    let server = TestServer::start().await;
    let first = publish_to_u1(&server, 1).await;
    publish_to_u1(&server, 2).await;
    // No `?resume=1`: events flow at once.
    let mut client = server.connect("u1").await;
    publish_to_u1(&server, 3).await;
    assert_eq!(client.next_json().await["seq"], 3);
    let from = |seq: u64| json!({"positions": {"user:u1": {"epoch": first["epoch"], "seq": seq}}});
    let answer = client.request("resume", from(2)).await;
    assert_eq!((&answer["data"]["recovered"], &answer["data"]["missed"]), (&json!(true), &json!(0)));
    let answer = client.request("resume", from(0)).await;
    assert_eq!(answer["data"]["unrecovered"], json!(["user:u1"]), "1 and 2 cannot come before 3 any more");
    publish_to_u1(&server, 4).await;
    assert_eq!(client.next_json().await["seq"], 4, "and 3 is not sent twice");
}

#[tokio::test]
async fn a_device_resumes_from_what_it_acknowledged() {
    let server = TestServer::start().await;
    let token = server.token("u1", json!({}));
    let mut phone = server.connect_query(&token, "device=phone").await;
    let mut position = Value::Null;
    for n in 1..=3 {
        position = publish_to_u1(&server, n).await;
        assert_eq!(phone.next_json().await["seq"], n);
    }
    let answer = phone.request("ack", json!({"positions": {"user:u1": position}})).await;
    assert_eq!(answer["data"]["acked"], 1, "{answer}");
    let path = "/api/v1/apps/app1/users/u1/connections";
    let (_, listed) = server.api("GET", path, Some(API_KEY), None).await;
    assert_eq!(listed["connections"][0]["device"], "phone");
    assert_eq!(listed["acked"]["phone"]["user:u1"]["seq"], 3, "{listed}");
    drop(phone);
    for n in 4..=5 {
        publish_to_u1(&server, n).await;
    }

    // The app restarted and lost its positions: `resume` without any.
    let mut phone = server.connect_query(&token, "device=phone&resume=1").await;
    phone.send(json!({"type": "resume", "data": {}})).await;
    let (replayed, resumed) = read_until(&mut phone, "resumed").await;
    assert_eq!(seqs(&replayed), [4, 5]);
    assert_eq!(resumed["data"]["missed"], 2);
}

#[tokio::test]
async fn bad_resume_and_ack_frames_are_answered_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let position = json!({"epoch": "e", "seq": 1});
    let cases = [
        ("resume", json!({"positions": []}), "bad_request", "data.positions"),
        ("resume", json!({"positions": {"user:u1": {"seq": "x"}}}), "bad_request", "data.positions.user:u1"),
        ("resume", json!({"positions": {"room:r": position}}), "bad_request", "keeps no history"),
        ("resume", json!({"positions": {"user:u2": position}}), "forbidden", ""),
        ("resume", json!({}), "bad_request", "?device="),
        ("ack", json!({"positions": {"user:u1": position}}), "bad_request", "device"),
        ("subscribe", json!({"channel": "user:u1", "since": 3}), "bad_request", "data.since"),
    ];
    for (kind, data, code, needle) in cases {
        let answer = client.request(kind, data.clone()).await;
        assert_eq!(answer["type"], "error", "{kind} {data}: {answer}");
        assert_eq!(answer["data"]["code"], code, "{kind} {data}: {answer}");
        let message = answer["data"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{kind} {data}: `{message}` should mention `{needle}`");
    }
    let mut device = server.connect_query(&server.token("u1", json!({})), "device=d").await;
    let answer = device.request("ack", json!({"positions": {"group:g": position}})).await;
    assert!(answer["data"]["message"].as_str().unwrap().contains("not subscribed"), "{answer}");
    client.assert_alive().await;
    device.assert_alive().await;
}

/// A client that drops its socket at random moments (mid-replay included) while a publisher
/// runs, and resumes each time from the last event it read: across 1000 cycles it must see
/// every event exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_random_reconnects_under_a_concurrent_publisher_lose_and_repeat_nothing() {
    const CYCLES: u64 = 1000;
    const MAX_EVENTS: u64 = 20_000;
    const PUBLISHERS: u64 = 4;
    let mut m = manifest();
    m["history"] = json!({"user": {"size": 100000}});
    let server = Arc::new(TestServer::start_with(vec![m], |_| {}).await);
    let token = server.token("u1", json!({}));
    let stop = Arc::new(AtomicBool::new(false));
    // Four publishers, so that events arrive faster than one request at a time allows;
    // each event's data is unique, so a duplicate shows even where seqs look right.
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (server, stop) = (server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while n < MAX_EVENTS / PUBLISHERS && !stop.load(Ordering::Relaxed) {
                    publish_to_u1(&server, n * PUBLISHERS + p).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let (_, page) = server.api("GET", "/api/v1/apps/app1/channels/user:u1/history?limit=1", Some(API_KEY), None).await;
    let epoch = page["epoch"].clone();
    let mut last = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut random = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_random = move |below: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % below
    };
    for cycle in 0..CYCLES {
        let mut client = server.connect_query(&token, "resume=1").await;
        let position = json!({"epoch": epoch, "seq": last});
        client.send(json!({"type": "resume", "data": {"positions": {"user:u1": position}}})).await;
        // Read a random number of frames (events or `resumed`), then drop the socket.
        for _ in 0..next_random(12) {
            let frame = client.next_json().await;
            if frame["type"] == "resumed" {
                assert_eq!(frame["data"]["recovered"], true, "cycle {cycle}: {frame}");
                assert_eq!(frame["data"]["positions"]["user:u1"]["seq"], last, "cycle {cycle}");
                continue;
            }
            let seq = frame["seq"].as_u64().expect("an event");
            assert_eq!(seq, last + 1, "cycle {cycle}: a gap or a duplicate: {frame}");
            assert!(seen.insert(frame["data"].as_u64().unwrap()), "cycle {cycle}: a duplicate event");
            last = seq;
        }
        drop(client);
    }
    stop.store(true, Ordering::Relaxed);
    let mut published = 0;
    for publisher in publishers {
        published += publisher.await.unwrap();
    }
    assert!(last <= published && published > 0);
    let mut client = server.connect_query(&token, "resume=1").await;
    let position = json!({"epoch": epoch, "seq": last});
    client.send(json!({"type": "resume", "data": {"positions": {"user:u1": position}}})).await;
    let (replayed, resumed) = read_until(&mut client, "resumed").await;
    for event in &replayed {
        assert_eq!(event["seq"], last + 1, "final catch-up: a gap or a duplicate");
        assert!(seen.insert(event["data"].as_u64().unwrap()), "final catch-up: a duplicate event");
        last += 1;
    }
    assert_eq!(last, published, "every published event was seen exactly once");
    assert_eq!(resumed["data"]["recovered"], true);
}
