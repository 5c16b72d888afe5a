//! Socket.IO bounds: a client that stops reading (WebSocket) or polling is closed by the same
//! byte bound as a native one and counted as a slow consumer, and sessions that have not
//! authenticated are capped per source address.

use std::time::Duration;

use serde_json::json;

use crate::support::{manifest, Server, KEY, WAIT};
use crate::wire::RawSocket;

/// Events of 2 KB published to the slow client: 16 MB, more than its 1 MiB queue and the
/// socket buffers between it and the server together.
const EVENTS: usize = 8_000;

async fn flood(server: &Server, user: &str) {
    let data = "x".repeat(2_000);
    let url = format!("{}/api/v1/apps/bounds/publish/batch", server.base);
    for chunk in 0..EVENTS / 100 {
        let events: Vec<_> = (0..100)
            .map(|i| json!({"channels": [format!("user:{user}")], "type": "big", "data": {"n": chunk * 100 + i, "pad": data}}))
            .collect();
        let response = server.http.post(&url).bearer_auth(KEY).json(&json!({"events": events})).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

async fn overflows(server: &Server) -> f64 {
    let text = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("switchboard_queue_overflows_total{") && l.contains("app=\"bounds\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits (bounded) until the overflow counter reaches `n`.
async fn overflows_reach(server: &Server, n: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while overflows(server).await < n {
        assert!(tokio::time::Instant::now() < deadline, "no slow-consumer close was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_socket_io_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let server = Server::start(manifest()).await;
    let baseline = server.rss_mib();
    let mut slow = RawSocket::connect(server.addr(), "/socket.io/?EIO=4&transport=websocket", None).await;
    assert!(slow.text(WAIT).await.starts_with('0'), "the open packet");
    let connect = format!("40{}", json!({"token": server.token("slow")}));
    assert!(slow.send(0x1, connect.as_bytes(), false, WAIT).await);
    assert!(slow.text(WAIT).await.starts_with("40"), "connected");
    // It reads nothing more.
    flood(&server, "slow").await;
    overflows_reach(&server, 1.0).await;
    assert!(slow.ended_within(WAIT).await, "the slow client was closed");
    server.assert_within("a Socket.IO client that stops reading", baseline, 24.0);
}

#[tokio::test]
async fn a_socket_io_client_that_stops_polling_is_closed_as_a_slow_consumer() {
    let server = Server::start(manifest()).await;
    let baseline = server.rss_mib();
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", server.base);
    let open = server.http.get(&handshake).send().await.unwrap().text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&open[1..]).unwrap()["sid"].as_str().unwrap().to_owned();
    let session = format!("{handshake}&sid={sid}");
    let connect = format!("40{}", json!({"token": server.token("sleepy")}));
    assert_eq!(server.http.post(&session).body(connect).send().await.unwrap().status(), 200);
    let connected = server.http.get(&session).send().await.unwrap().text().await.unwrap();
    assert!(connected.starts_with("40"), "{connected}");
    // It polls no more.
    flood(&server, "sleepy").await;
    overflows_reach(&server, 1.0).await;
    assert_eq!(server.http.get(&session).send().await.unwrap().status(), 400, "the session is gone");
    server.assert_within("a Socket.IO client that stops polling", baseline, 24.0);
}

#[tokio::test]
async fn sessions_that_have_not_authenticated_are_capped_per_address() {
    let server = Server::start(manifest()).await;
    let baseline = server.rss_mib();
    let handshake = format!("{}/socket.io/?EIO=4&transport=polling", server.base);
    // The default cap: 1,000 waiting sessions from one address.
    let mut refused = None;
    for n in 0..1_100 {
        let status = server.http.get(&handshake).send().await.unwrap().status().as_u16();
        if status != 200 {
            refused = Some((n, status));
            break;
        }
    }
    assert_eq!(refused, Some((1_000, 503)), "the 1,001st waiting session is refused");
    // A native connection without a token would wait too: refused before the upgrade.
    let request = format!("{}/ws", server.base.replacen("http", "ws", 1));
    let error = tokio_tungstenite::connect_async(request).await.unwrap_err().to_string();
    assert!(error.contains("503"), "{error}");
    // A client with a token still gets in: it does not wait for long... but the room is full.
    server.assert_within("1,000 unauthenticated Engine.IO sessions", baseline, 16.0);
}

#[tokio::test]
async fn a_socket_io_client_that_floods_events_is_held_back_then_closed() {
    let server = Server::start(manifest()).await;
    let baseline = server.rss_mib();
    let mut flooder = RawSocket::connect(server.addr(), "/socket.io/?EIO=4&transport=websocket", None).await;
    assert!(flooder.text(WAIT).await.starts_with('0'), "the open packet");
    let connect = format!("40{}", json!({"token": server.token("flooder")}));
    assert!(flooder.send(0x1, connect.as_bytes(), false, WAIT).await);
    assert!(flooder.text(WAIT).await.starts_with("40"), "connected");
    // Events as fast as the socket takes them, never reading the answers.
    let event = format!("42[\"no:such:type\",{{\"pad\":\"{}\"}}]", "x".repeat(200));
    let mut sent = 0;
    while sent < 200_000 && flooder.send(0x1, event.as_bytes(), false, Duration::from_secs(2)).await {
        sent += 1;
    }
    assert!(flooder.ended_within(WAIT).await, "the flooder was closed ({sent} events sent)");
    server.assert_within("a Socket.IO client flooding events", baseline, 24.0);
}

#[tokio::test]
async fn one_attachment_named_by_many_placeholders_is_refused() {
    let server = Server::start(manifest()).await;
    let baseline = server.rss_mib();
    let mut bomber = RawSocket::connect(server.addr(), "/socket.io/?EIO=4&transport=websocket", None).await;
    assert!(bomber.text(WAIT).await.starts_with('0'), "the open packet");
    let connect = format!("40{}", json!({"token": server.token("bomber")}));
    assert!(bomber.send(0x1, connect.as_bytes(), false, WAIT).await);
    assert!(bomber.text(WAIT).await.starts_with("40"), "connected");
    // 2,000 placeholders for one 300 KB attachment: 800 MB once each is filled in.
    let placeholders: Vec<_> = (0..2_000).map(|_| json!({"_placeholder": true, "num": 0})).collect();
    let packet = format!("451-{}", json!(["upload", placeholders]));
    assert!(bomber.send(0x1, packet.as_bytes(), false, WAIT).await);
    let _ = bomber.send(0x2, &vec![7u8; 300_000], false, WAIT).await;
    assert!(bomber.ended_within(WAIT).await, "the session ended");
    server.assert_within("one attachment named by 2,000 placeholders", baseline, 24.0);
}
