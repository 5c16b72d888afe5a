//! Engine.IO v4 as its specification says, where the upstream suites found gaps: the probe
//! ends a pending poll at once, an upgraded session refuses HTTP and a second WebSocket, a
//! client's close packet ends its poll with a noop, a probe that never upgrades is dropped,
//! `allowed_origins` holds for Socket.IO endpoints, events carry the recovery offset only for
//! clients that can use it, and binary attachments are bounded.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::socketio::{conformance_server, next_text, Polling, SEP};
use crate::support::{manifest, TestServer};

async fn websocket(server: &TestServer, query: &str) -> crate::support::Client {
    server.raw(&format!("/socket.io/?EIO=4&transport=websocket{query}"), &[]).await
}

/// A Socket.IO session over polling, connected as `user`.
async fn connected<'a>(server: &'a TestServer, user: &str) -> Polling<'a> {
    let polling = Polling::open(server, "/socket.io/").await;
    assert_eq!(polling.post(&format!("40{}", json!({"token": server.token(user, json!({}))}))).await, 200);
    assert!(polling.next().await.starts_with("40"));
    polling
}

#[tokio::test]
async fn the_probe_ends_a_pending_poll_at_once_with_a_noop() {
    let server = TestServer::start().await;
    let polling = connected(&server, "ann").await;
    let pending = polling.get();
    let probe = async {
        // The poll is waiting (25 s until the next ping) when the probe arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut ws = websocket(&server, &format!("&sid={}", polling.sid)).await;
        ws.ws.send(Message::text("2probe")).await.unwrap();
        assert_eq!(next_text(&mut ws.ws).await, "3probe");
        ws
    };
    let ((status, packets), mut ws) =
        tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(pending, probe) })
            .await
            .expect("the pending poll ended before the upgrade completed, without waiting for a ping");
    assert_eq!((status, packets), (200, vec!["6".to_owned()]));
    ws.ws.send(Message::text("5")).await.unwrap();
    ws.ws.send(Message::text("421[\"ping\",{}]")).await.unwrap();
    assert_eq!(next_text(&mut ws.ws).await, "431[{\"ok\":true,\"data\":{}}]");
}

#[tokio::test]
async fn an_upgraded_session_refuses_polling_and_a_second_websocket() {
    let server = TestServer::start().await;
    let polling = connected(&server, "ann").await;
    let mut ws = websocket(&server, &format!("&sid={}", polling.sid)).await;
    ws.ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws.ws).await, "3probe");
    ws.ws.send(Message::text("5")).await.unwrap();
    ws.ws.send(Message::text("421[\"ping\",{}]")).await.unwrap();
    assert_eq!(next_text(&mut ws.ws).await, "431[{\"ok\":true,\"data\":{}}]", "upgraded");

    assert_eq!(polling.get().await.0, 400, "a poll after the upgrade");
    assert_eq!(polling.post("42[\"ping\",{}]").await, 400, "a post after the upgrade");
    let mut second = websocket(&server, &format!("&sid={}", polling.sid)).await;
    let (_, closed) = second.closed().await;
    assert_eq!(closed.code, 1008, "a second WebSocket for the session is closed");
    ws.ws.send(Message::text("422[\"ping\",{}]")).await.unwrap();
    assert_eq!(next_text(&mut ws.ws).await, "432[{\"ok\":true,\"data\":{}}]", "the first one carries on");
}

#[tokio::test]
async fn a_close_packet_ends_the_pending_poll_with_a_noop_then_the_session() {
    let server = conformance_server().await;
    let polling = Polling::open(&server, "/engine.io/").await;
    let pending = polling.get();
    let close = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        polling.post("1").await
    };
    let ((status, packets), posted) = tokio::join!(pending, close);
    assert_eq!((status, packets, posted), (200, vec!["6".to_owned()], 200));
    assert_eq!(polling.get().await.0, 400, "the session is gone");
}

#[tokio::test]
async fn a_probe_that_never_upgrades_is_dropped_and_polling_goes_on() {
    let server = conformance_server().await;
    let polling = Polling::open(&server, "/engine.io/").await;
    let url = format!("/engine.io/?EIO=4&transport=websocket&sid={}", polling.sid);
    let mut probe = server.raw(&url, &[]).await;
    let started = tokio::time::Instant::now();
    let (_, closed) = probe.closed().await;
    assert_eq!(closed.code, 1008);
    assert!(started.elapsed() < Duration::from_secs(5), "dropped within the upgrade timeout");
    assert_eq!(polling.post("4still here").await, 200, "the session still polls");
    assert_eq!(polling.next().await, "4still here");
}

#[tokio::test]
async fn allowed_origins_hold_for_socket_io_endpoints_without_regard_to_case() {
    let mut app = manifest();
    app["websockets"]["legacy"]["allowed_origins"] = json!(["https://app.example.com"]);
    let server = TestServer::start_with(vec![app], |_| {}).await;
    let handshake = "/socket.io/?EIO=4&transport=polling";
    let get = |origin: &'static str| reqwest::Client::new().get(server.url(handshake)).header("Origin", origin).send();
    let foreign = get("https://evil.example").await.unwrap();
    assert_eq!(foreign.status().as_u16(), 403);
    let listed = get("HTTPS://App.Example.com").await.unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    let upgrade = server.addr.to_string();
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{upgrade}/socket.io/?EIO=4&transport=websocket"
    ))
    .unwrap();
    request.headers_mut().insert("Origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err().to_string();
    assert!(refused.contains("403"), "no 101 for a foreign origin: {refused}");
}

#[tokio::test]
async fn events_carry_the_offset_only_for_clients_that_can_use_it() {
    let server = TestServer::start().await;
    // python-engineio's handshake (its `t` is Python's time.time()) and the JavaScript
    // client's (a short base-64 string, or none).
    let python = Polling::open_query(&server, "/socket.io/", "&t=1733332800.123456").await;
    let javascript = Polling::open_query(&server, "/socket.io/", "&t=PbX3kQ2").await;
    for polling in [&python, &javascript] {
        assert_eq!(polling.post(&format!("40{}", json!({"token": server.token("ann", json!({}))}))).await, 200);
        assert!(polling.next().await.starts_with("40"));
    }
    server.publish(json!({"channels": ["user:ann"], "type": "hello", "data": {"n": 1}})).await;
    assert_eq!(python.next().await, "42[\"hello\",{\"n\":1}]", "exactly one argument");
    let with_offset = javascript.next().await;
    let args: Value = serde_json::from_str(with_offset.strip_prefix("42").unwrap()).unwrap();
    assert_eq!((args[1].clone(), args[2].is_string()), (json!({"n": 1}), true), "{with_offset}");
}

#[tokio::test]
async fn binary_attachments_are_bounded_and_refused_before_connect() {
    let server = TestServer::start().await;
    // Before CONNECT: a packet that announces attachments ends the session at once.
    let early = Polling::open(&server, "/socket.io/").await;
    assert_eq!(early.post("451-[\"upload\",{\"_placeholder\":true,\"num\":0}]").await, 200);
    assert_eq!(early.get().await.0, 400, "closed before any attachment was read");
    // After it: more attachments than allowed, or more bytes than maxPayload, end it too.
    let polling = connected(&server, "ann").await;
    let placeholders: Vec<Value> = (0..65).map(|n| json!({"_placeholder": true, "num": n})).collect();
    let mut body = format!("4565-{}", json!(["upload", placeholders]));
    for _ in 0..65 {
        body.push(SEP);
        body.push_str("bBw==");
    }
    polling.post(&body).await;
    assert_eq!(polling.get().await.0, 400, "65 attachments ended the session");

    let mut ws = websocket(&server, "").await;
    next_text(&mut ws.ws).await; // the open packet
    let connect = format!("40{}", json!({"token": server.token("ann", json!({}))}));
    ws.ws.send(Message::text(connect)).await.unwrap();
    assert!(next_text(&mut ws.ws).await.starts_with("40"));
    let placeholders: Vec<Value> = (0..3).map(|n| json!({"_placeholder": true, "num": n})).collect();
    ws.ws.send(Message::text(format!("453-{}", json!(["upload", placeholders])))).await.unwrap();
    for _ in 0..3 {
        // 3 x 400 KB: more than maxPayload (1 MB) together, though each frame is within it.
        if ws.ws.send(Message::binary(vec![7u8; 400_000])).await.is_err() {
            break;
        }
    }
    let (_, closed) = ws.closed().await;
    assert_ne!(closed.code, 0, "the session ended: {closed:?}");
}

/// A server whose Socket.IO endpoint pings every second (20 s to answer), waiting room `room`.
async fn quick_server(room: switchboard_hub::GateLimits) -> TestServer {
    let mut app = manifest();
    app["websockets"]["legacy"]["ping_interval"] = json!("1s");
    TestServer::start_with(vec![app], move |s| s.unauthenticated = room).await
}

/// A Socket.IO WebSocket session, past the open packet.
async fn socket_io(server: &TestServer) -> crate::support::Client {
    let mut ws = websocket(server, "").await;
    assert!(next_text(&mut ws.ws).await.starts_with('0'));
    ws
}

#[tokio::test]
async fn an_idle_socket_io_client_that_answers_pings_stays_connected() {
    let server = quick_server(Default::default()).await;
    let mut ws = socket_io(&server).await;
    ws.ws.send(Message::text(format!("40{}", json!({"token": server.token("idle", json!({}))})))).await.unwrap();
    assert!(next_text(&mut ws.ws).await.starts_with("40"));
    // Four ping intervals of silence but for pongs (next_text answers every ping).
    let quiet = tokio::time::timeout(Duration::from_millis(4_500), next_text(&mut ws.ws)).await;
    assert!(quiet.is_err(), "nothing but pings was due: {quiet:?}");
    server.publish(json!({"channels": ["user:idle"], "type": "still", "data": 1})).await;
    assert!(next_text(&mut ws.ws).await.starts_with("42[\"still\",1"), "the hub session is alive too");
}

#[tokio::test]
async fn a_refused_connect_takes_no_attachments_and_too_many_end_the_session() {
    let server = TestServer::start().await;
    let mut ws = socket_io(&server).await;
    ws.ws.send(Message::text("40")).await.unwrap(); // no token: refused
    assert!(next_text(&mut ws.ws).await.starts_with("44"));
    ws.ws.send(Message::text("451-[\"upload\",{\"_placeholder\":true,\"num\":0}]")).await.unwrap();
    let (_, closed) = ws.closed().await;
    assert_ne!(closed.code, 0, "attachments without a live session end it");

    let mut ws = socket_io(&server).await;
    for _ in 0..5 {
        ws.ws.send(Message::text("40{\"token\":\"not-a-jwt\"}")).await.unwrap();
        assert!(next_text(&mut ws.ws).await.starts_with("44"));
    }
    ws.ws.send(Message::text("40{\"token\":\"not-a-jwt\"}")).await.unwrap();
    let (_, closed) = ws.closed().await;
    assert_ne!(closed.code, 0, "a sixth CONNECT ends the session");
}

#[tokio::test]
async fn a_session_whose_hub_session_ended_waits_in_the_room_again() {
    let room = switchboard_hub::GateLimits { total: 100, per_address: 2 };
    let server = quick_server(room).await;
    let mut ws = socket_io(&server).await;
    ws.ws.send(Message::text(format!("40{}", json!({"token": server.token("ann", json!({}))})))).await.unwrap();
    assert!(next_text(&mut ws.ws).await.starts_with("40"), "connected: out of the room");
    let _first = Polling::open(&server, "/socket.io/").await;
    let _second = Polling::open(&server, "/socket.io/").await;
    let handshake = server.url("/socket.io/?EIO=4&transport=polling");
    assert_eq!(reqwest::get(&handshake).await.unwrap().status().as_u16(), 503, "the room holds two");
    // Leaving the namespace, the first session must wait again: there is no place for it.
    ws.ws.send(Message::text("41")).await.unwrap();
    let (_, closed) = ws.closed().await;
    assert_ne!(closed.code, 0, "no place in the room: the session ends");
}

#[tokio::test]
async fn a_second_probe_ends_the_upgrade() {
    let server = TestServer::start().await;
    let polling = connected(&server, "ann").await;
    let mut ws = websocket(&server, &format!("&sid={}", polling.sid)).await;
    ws.ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws.ws).await, "3probe");
    ws.ws.send(Message::text("2probe")).await.unwrap();
    let (_, closed) = ws.closed().await;
    assert_eq!(closed.code, 1008);
    assert_eq!(polling.post("42[\"ping\",{}]").await, 200, "the session goes on polling");
}

#[tokio::test]
async fn a_trickled_or_second_concurrent_post_ends_the_session() {
    let server = conformance_server().await; // pingTimeout 200 ms: the body's time limit
    let polling = Polling::open(&server, "/engine.io/").await;
    // A POST that announces 100 bytes and sends 4, over a raw connection.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut trickle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4hel",
        polling.sid
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // it is being read
    assert_eq!(polling.post("4x").await, 400, "a second POST while one is under way");
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), trickle.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408") || n == 0, "the trickled body is cut off: {answer}");
    assert_eq!(polling.get().await.0, 400, "the session ended");
}

#[tokio::test]
async fn an_app_event_named_like_the_hubs_own_frames_reaches_socket_io_as_an_event() {
    let server = TestServer::start().await;
    let polling = connected(&server, "ann").await;
    for kind in ["connected", "pong"] {
        server.publish(json!({"channels": ["user:ann"], "type": kind, "data": 7})).await;
        let event = polling.next().await;
        assert!(event.starts_with(&format!("42[\"{kind}\",7")), "{event}");
    }
}

#[tokio::test]
async fn an_event_at_the_queue_limit_reaches_a_socket_io_client_with_its_offset() {
    let mut app = manifest();
    app["limits"]["outbox_max_bytes"] = json!(8192);
    let server = TestServer::start_with(vec![app], |_| {}).await;
    // Forty groups with a position each make a long offset (it names every channel's).
    let groups: Vec<String> = (0..40).map(|g| format!("team-{g:02}")).collect();
    let polling = Polling::open(&server, "/socket.io/").await;
    let token = server.token("ann", json!({"groups": groups}));
    assert_eq!(polling.post(&format!("40{}", json!({"token": token}))).await, 200);
    assert!(polling.next().await.starts_with("40"));
    for group in &groups {
        server.publish(json!({"channels": [format!("group:{group}")], "type": "tick"})).await;
        assert!(polling.next().await.starts_with("42[\"tick\""));
    }
    // Just within the hub's 8 KiB queue as a frame; over it with the offset appended.
    let big = "x".repeat(7_950);
    server.publish(json!({"channels": ["user:ann"], "type": "big", "data": big})).await;
    let event = polling.next().await;
    assert!(
        event.starts_with("42[\"big\"") && event.len() > 8192,
        "delivered whole ({} bytes), not closed",
        event.len()
    );
}

#[tokio::test]
async fn a_connection_holds_at_most_max_channels() {
    let mut app = manifest();
    app["limits"]["max_channels"] = json!(4);
    let server = TestServer::start_with(vec![app], |_| {}).await;
    let mut client = server.connect("ann").await; // broadcast and user:ann
    for room in ["a", "b"] {
        let reply = client.request("subscribe", json!({"channel": format!("room:{room}")})).await;
        assert_eq!(reply["type"], "reply", "{reply}");
    }
    let refused = client.request("subscribe", json!({"channel": "room:c"})).await;
    assert_eq!((refused["type"].as_str(), refused["data"]["code"].as_str()), (Some("error"), Some("forbidden")));
    let again = client.request("subscribe", json!({"channel": "room:a"})).await;
    assert_eq!(again["type"], "reply", "one it holds already is fine: {again}");
}

#[tokio::test]
async fn pings_before_the_auth_frame_are_no_auth_frame() {
    let server = TestServer::start().await;
    let mut client = server.raw("/ws", &[]).await;
    client.ws.send(Message::Ping(vec![1, 2].into())).await.unwrap();
    client.send(json!({"type": "auth", "data": {"token": server.token("ann", json!({}))}})).await;
    assert_eq!(client.next_json().await["type"], "connected");
}
