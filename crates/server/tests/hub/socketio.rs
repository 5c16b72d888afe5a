//! The Socket.IO adapter at the protocol level: Engine.IO handshake, polling, upgrade,
//! heartbeat, errors and malformed input, and the diagnostic conformance mode. The real
//! socket.io-client and python-socketio run in `socketio_clients.rs`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{TestServer, API_KEY, WAIT};

pub(crate) const SEP: char = '\u{1e}';

/// A server with the conformance endpoints: Socket.IO at /socket.io/, raw Engine.IO at /engine.io/.
pub(crate) async fn conformance_server() -> TestServer {
    let manifest = json!({
        "slug": "conf",
        "auth_policy": {"required": false},
        "websockets": {
            "sio": {"path": "/socket.io/", "protocol": "socket.io-conformance"},
            "eio": {"path": "/engine.io/", "protocol": "engine.io-echo"}
        }
    });
    TestServer::start_with(vec![manifest], |_| {}).await
}

pub(crate) struct Polling<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
    path: &'static str,
    /// Query parameters of every request, after the protocol's (`&t=...`).
    query: String,
    pub(crate) sid: String,
    pub(crate) open: Value,
    /// Packets of a poll that `next` has not handed out yet.
    pending: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl<'a> Polling<'a> {
    pub(crate) async fn open(server: &'a TestServer, path: &'static str) -> Self {
        Self::open_query(server, path, "").await
    }

    /// With extra query parameters, as `&t=...`.
    pub(crate) async fn open_query(server: &'a TestServer, path: &'static str, query: &str) -> Self {
        let http = reqwest::Client::new();
        let body = http
            .get(server.url(&format!("{path}?EIO=4&transport=polling{query}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        Self { server, http, path, query: query.to_owned(), sid, open, pending: Default::default() }
    }

    fn url(&self) -> String {
        self.server.url(&format!("{}?EIO=4&transport=polling&sid={}{}", self.path, self.sid, self.query))
    }

    pub(crate) async fn post(&self, body: &str) -> u16 {
        self.http.post(self.url()).body(body.to_owned()).send().await.unwrap().status().as_u16()
    }

    /// The packets of the next poll.
    pub(crate) async fn get(&self) -> (u16, Vec<String>) {
        let response =
            tokio::time::timeout(WAIT, self.http.get(self.url()).send()).await.expect("a poll answer").unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        (status, body.split(SEP).map(str::to_owned).collect())
    }

    /// The next packet other than a ping (pings are answered).
    pub(crate) async fn next(&self) -> String {
        loop {
            if let Some(packet) = self.pending.lock().unwrap().pop_front() {
                return packet;
            }
            let (status, packets) = self.get().await;
            assert_eq!(status, 200, "{packets:?}");
            if packets.iter().any(|p| p == "2") {
                assert_eq!(self.post("3").await, 200);
            }
            self.pending.lock().unwrap().extend(packets.into_iter().filter(|p| p != "2"));
        }
    }
}

async fn engine_error(server: &TestServer, method: &str, query: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response =
        reqwest::Client::new().request(method, server.url(&format!("/socket.io/{query}"))).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_handshake_announces_the_session_and_bad_requests_get_the_protocols_400s() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    assert_eq!(polling.open["upgrades"], json!(["websocket"]));
    assert_eq!(
        (polling.open["pingInterval"].as_u64(), polling.open["pingTimeout"].as_u64()),
        (Some(25_000), Some(20_000))
    );
    assert_eq!(polling.open["maxPayload"], 1_000_000);
    let cases = [
        ("GET", "?EIO=3&transport=polling", 5, "Unsupported protocol version"),
        ("GET", "?transport=polling", 5, "Unsupported protocol version"),
        ("GET", "?EIO=4&transport=carrier-pigeon", 0, "Transport unknown"),
        ("GET", "?EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"),
        ("POST", "?EIO=4&transport=polling", 2, "Bad handshake method"),
        ("GET", "?EIO=4&transport=websocket", 3, "Bad request: expected a WebSocket upgrade"),
    ];
    for (method, query, code, message) in cases {
        assert_eq!(
            engine_error(&server, method, query).await,
            (400, json!({"code": code, "message": message})),
            "{method} {query}"
        );
    }
}

#[tokio::test]
async fn polling_carries_connect_events_and_acks_and_several_packets_per_payload() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    let token = server.token("ann", json!({}));
    assert_eq!(polling.post(&format!("40{}", json!({"token": token}))).await, 200);
    let connect = polling.next().await;
    let ack: Value = serde_json::from_str(connect.strip_prefix("40").expect("CONNECT")).unwrap();
    assert!(ack["sid"].is_string() && ack["pid"].is_string(), "{connect}");

    // Two emits in one payload; each answered by an ACK with {ok, data | error}.
    assert_eq!(polling.post(&format!("421[\"ping\",{{}}]{SEP}422[\"nope\",{{}}]")).await, 200);
    assert_eq!(polling.next().await, "431[{\"ok\":true,\"data\":{}}]");
    server.publish(json!({"channels": ["user:ann"], "type": "a", "data": 1})).await;
    server.publish(json!({"channels": ["user:ann"], "type": "b", "data": 2})).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(polling.next().await);
    }
    assert!(seen[0].starts_with("432[{\"error\":{\"code\":\"unknown_type\""), "{seen:?}");
    assert!(
        seen[1].starts_with("42[\"a\",1,\"") && seen[2].starts_with("42[\"b\",2,\""),
        "events carry an offset: {seen:?}"
    );
}

#[tokio::test]
async fn a_bad_token_is_a_connect_error_a_person_can_read() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    assert_eq!(polling.post("40{\"token\":\"not-a-jwt\"}").await, 200);
    let refused = polling.next().await;
    let error: Value = serde_json::from_str(refused.strip_prefix("44").expect("CONNECT_ERROR")).unwrap();
    assert!(error["message"].as_str().unwrap().to_lowercase().contains("token"), "{error}");
    assert_eq!(error["data"]["code"], 4401);
    assert_eq!(polling.post("40").await, 200, "the session stays for another try");
    let missing = polling.next().await;
    assert!(missing.contains("auth: { token }"), "{missing}");
}

#[tokio::test]
async fn malformed_packets_close_the_session() {
    let server = TestServer::start().await;
    for bad in ["4xyz", "42{\"not\":\"an array\"}", "9", "42[\"a\""] {
        let polling = Polling::open(&server, "/socket.io/").await;
        assert_eq!(polling.post(&format!("40{}", json!({"token": server.token("ann", json!({}))}))).await, 200);
        polling.next().await;
        polling.post(bad).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, packets) = polling.get().await;
            if status == 400 || packets.iter().any(|p| p == "1") {
                break; // closed: the poll says so, or the sid is gone
            }
            assert!(tokio::time::Instant::now() < deadline, "{bad} did not close the session");
        }
    }
}

#[tokio::test]
async fn overlapping_polls_and_oversized_posts_are_refused() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    let waiting = polling.get();
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await; // let the first poll start waiting
        polling.get().await
    };
    let (first, second) = tokio::join!(waiting, second);
    // Whichever arrived second is refused, and the session closes under the other.
    let (refused, waited) = if second.0 == 400 { (second, first) } else { (first, second) };
    assert_eq!(refused.0, 400, "a second concurrent poll is refused: {refused:?} {waited:?}");
    assert!(waited.1.iter().any(|p| p == "1"), "and the session closes: {waited:?}");
    let polling = Polling::open(&server, "/socket.io/").await;
    let huge = format!("4{}", "x".repeat(1_000_001));
    assert_eq!(polling.post(&huge).await, 413);
}

#[tokio::test]
async fn polling_answers_cors_preflights_for_browsers() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/socket.io/?EIO=4&transport=polling"))
        .header("Origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let allowed = response.headers().get("access-control-allow-origin").unwrap().to_str().unwrap();
    assert_eq!(allowed, "http://app.example");
}

#[tokio::test]
async fn polling_upgrades_to_websocket_with_the_probe() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    assert_eq!(polling.post(&format!("40{}", json!({"token": server.token("ann", json!({}))}))).await, 200);
    assert!(polling.next().await.starts_with("40"));
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket&sid={}", server.addr, polling.sid);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let pending = polling.get();
    let upgrade = async {
        ws.send(Message::text("2probe")).await.unwrap();
        assert_eq!(next_text(&mut ws).await, "3probe");
        ws.send(Message::text("5")).await.unwrap();
    };
    let ((_, packets), ()) = tokio::join!(pending, upgrade);
    assert_eq!(packets, ["6"], "the pending poll ends with a noop");
    server.publish(json!({"channels": ["user:ann"], "type": "after", "data": true})).await;
    assert!(next_text(&mut ws).await.starts_with("42[\"after\",true,"));
    ws.send(Message::text("421[\"ping\",{}]")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "431[{\"ok\":true,\"data\":{}}]");
}

/// The next frame that is not a ping (pings are answered, so a slow test keeps its session).
pub(crate) async fn next_text(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Binary(bytes))) => return format!("<binary {}>", bytes.len()),
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_ping_timeout() {
    let server = conformance_server().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    assert_eq!((polling.open["pingInterval"].as_u64(), polling.open["pingTimeout"].as_u64()), (Some(300), Some(200)));
    let (status, packets) = polling.get().await;
    assert!(status == 400 || packets[0] == "2", "a ping after the interval: {packets:?}");
    // No pong: after the timeout the session is gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, packets) = polling.get().await;
        if status == 400 || packets.iter().any(|p| p == "1") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never closed: {packets:?}");
    }
}

#[tokio::test]
async fn the_conformance_mode_behaves_as_the_published_suites_expect() {
    let server = conformance_server().await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"), "the open packet comes first over WebSocket");
    ws.send(Message::text("40{\"token\":\"123\"}")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{\"sid\":"));
    assert_eq!(next_text(&mut ws).await, "42[\"auth\",{\"token\":\"123\"}]");
    ws.send(Message::text("40/custom,")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40/custom,{\"sid\":"));
    assert_eq!(next_text(&mut ws).await, "42/custom,[\"auth\",{}]");
    ws.send(Message::text("40/random,")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "44/random,{\"message\":\"Invalid namespace\"}");
    ws.send(Message::text("42[\"message\",1,\"2\",{\"3\":[true]}]")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "42[\"message-back\",1,\"2\",{\"3\":[true]}]");
    ws.send(Message::text("42456[\"message-with-ack\",1,\"2\"]")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "43456[1,\"2\"]");
    ws.send(Message::text("451-[\"message\",{\"_placeholder\":true,\"num\":0}]")).await.unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]");
    assert_eq!(next_text(&mut ws).await, "<binary 3>");

    let engine = Polling::open(&server, "/engine.io/").await;
    assert_eq!(engine.post(&format!("4hello{SEP}bAQID")).await, 200);
    let echoed = [engine.next().await, engine.next().await];
    assert_eq!(echoed, ["4hello", "bAQID"], "raw Engine.IO echo, binary as base64 over polling");
}

#[tokio::test]
async fn an_app_key_is_no_socket_io_token() {
    let server = TestServer::start().await;
    let polling = Polling::open(&server, "/socket.io/").await;
    assert_eq!(polling.post(&format!("40{}", json!({"token": API_KEY}))).await, 200);
    assert!(polling.next().await.starts_with("44"));
}

#[tokio::test]
async fn a_session_without_connect_is_closed_after_the_connect_timeout() {
    let server = conformance_server().await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let started = tokio::time::Instant::now();
    // Answer every ping at once (over WebSocket, well inside the 200 ms ping timeout), send
    // no CONNECT: the conformance mode's 1 s connect timeout ends the session.
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.expect("closed in time");
        match frame {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            _ => break,
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(1), "closed before the connect timeout");
}
