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
