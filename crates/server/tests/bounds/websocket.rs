//! WebSocket bounds: control frames count against the rate limit (pongs owed stay few), a
//! rate-limit close reaches a client that keeps writing, and a deflated message stops
//! inflating at the size limit.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{manifest, Server, KEY, WAIT};
use crate::wire::RawSocket;

/// Pings a flooder may send before it is stopped: ten times the default burst and then some.
const PINGS: usize = 200_000;

/// A bystander's socket and its `connected` frame read.
async fn bystander(
    server: &Server,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = server.ws(&format!("/ws?token={}", server.token("bystander")));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap(); // connected
    ws
}

/// The bystander still gets what is published to it.
async fn still_served(
    server: &Server,
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let body = json!({"channels": ["user:bystander"], "type": "still-here"});
    let url = format!("{}/api/v1/apps/bounds/publish", server.base);
    assert_eq!(server.http.post(url).bearer_auth(KEY).json(&body).send().await.unwrap().status(), 200);
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("the bystander is served").unwrap().unwrap() {
            Message::Text(text) if text.contains("still-here") => return,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_ping_flood_that_never_reads_is_closed_and_memory_stays_flat() {
    let server = Server::start(manifest()).await;
    let mut watcher = bystander(&server).await;
    let baseline = server.rss_mib();
    let token = server.token("flooder");
    let paths = [
        "/open".to_owned(),                                 // anonymous
        format!("/ws?token={token}"),                       // authenticated
        "/socket.io/?EIO=4&transport=websocket".to_owned(), // Socket.IO, before CONNECT
    ];
    for path in &paths {
        let mut flooder = RawSocket::connect(server.addr(), path, None).await;
        let payload = [b'p'; 125]; // the largest a control frame may carry
        let mut sent = 0;
        while sent < PINGS && flooder.send(0x9, &payload, false, Duration::from_secs(2)).await {
            sent += 1;
        }
        assert!(sent < PINGS, "{path}: the server kept reading {sent} pings");
        assert!(flooder.ended_within(WAIT).await, "{path}: the flooder was never closed");
    }
    server.assert_within("ping floods that never read", baseline, 24.0);
    still_served(&server, &mut watcher).await;
}

/// How a flooding client saw its connection end.
#[derive(Debug, PartialEq)]
enum Ending {
    /// A close frame with this code.
    Closed(u16),
    /// A write failed first (the connection was reset): it never read a close frame.
    WriteFailed,
    /// The stream ended without a close frame.
    Cut,
}

#[tokio::test]
async fn the_rate_limit_close_reaches_a_client_that_keeps_writing() {
    let server = Server::start(manifest()).await;
    let url = server.ws(&format!("/ws?token={}", server.token("chatty")));
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    // The client writes as fast as it can and reads only when a write must wait, as a busy
    // client does; a failed write ends it, as it ends most clients.
    let ending = tokio::time::timeout(WAIT, async {
        for _ in 0..200_000 {
            tokio::select! {
                biased;
                sent = sink.send(Message::text("{\"type\":\"ping\"}")) => if sent.is_err() { return Ending::WriteFailed },
                message = stream.next() => match message {
                    Some(Ok(Message::Close(Some(frame)))) => return Ending::Closed(u16::from(frame.code)),
                    Some(Ok(_)) => {}
                    _ => return Ending::Cut,
                },
            }
        }
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return Ending::Closed(u16::from(frame.code)),
                Some(Ok(_)) => {}
                _ => return Ending::Cut,
            }
        }
    })
    .await
    .expect("the connection ended in time");
    assert_eq!(ending, Ending::Closed(4429), "the client read the close frame before any reset");
}

#[tokio::test]
async fn a_deflated_message_stops_inflating_at_the_size_limit() {
    let mut app = manifest();
    app["websockets"]["realtime"]["compression"] = json!({});
    let server = Server::start(app).await;
    let baseline = server.rss_mib();
    // 64 MiB of spaces deflate to about 64 KiB; the endpoint takes 64 KiB messages.
    use std::io::Write as _;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        deflate.write_all(&spaces).unwrap();
    }
    deflate.flush().unwrap(); // a sync flush: the message ends with 00 00 ff ff
    let bomb = deflate.get_ref();
    assert!(bomb.len() < 1 << 17 && bomb.ends_with(&[0, 0, 0xff, 0xff]), "{} bytes", bomb.len());
    let bomb = &bomb[..bomb.len() - 4]; // RFC 7692: the sender strips the sync tail
    let path = format!("/ws?token={}", server.token("bomber"));
    let mut bomber = RawSocket::connect(server.addr(), &path, Some("permessage-deflate")).await;
    assert!(bomber.send(0x1, bomb, true, WAIT).await);
    assert!(bomber.ended_within(WAIT).await, "closed (1009)");
    server.assert_within("a 64 MiB deflate bomb", baseline, 16.0);
}
