//! permessage-deflate (RFC 7692) checked on the wire: a raw TCP client offers the extension,
//! reads the response header and every frame's RSV1 bit, and inflates payloads itself, so
//! nothing here trusts the server's own WebSocket layer.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{manifest, TestServer, WAIT};

const OFFER: &str = "permessage-deflate; client_max_window_bits";
/// The tail a sender strips from each compressed message (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// `/ws` compresses messages of 300 bytes and more and keeps its window between them;
/// `/plain` does not compress; `/fresh` has the defaults (both windows reset after every
/// message); `/small` keeps a 1 KiB window.
fn compression_manifest() -> Value {
    let mut m = manifest();
    let ws = &mut m["websockets"];
    ws["realtime"]["compression"] = json!({"min_bytes": 300, "server_context_takeover": true});
    ws["plain"] = json!({"path": "/plain"});
    ws["fresh"] = json!({"path": "/fresh", "compression": {}});
    ws["small"] =
        json!({"path": "/small", "compression": {"window_bits": 10, "level": 9, "server_context_takeover": true}});
    ws["off"] = json!({"path": "/off", "compression": {"enabled": false, "level": 9}});
    m
}

/// One frame as it crossed the wire.
struct WireFrame {
    compressed: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A WebSocket client with no WebSocket library: the handshake, frames and deflate by hand.
struct RawClient {
    tcp: TcpStream,
    extensions: Option<String>,
    inflate: Decompress,
}

impl RawClient {
    async fn connect(server: &TestServer, path: &str, offer: Option<&str>) -> Self {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let offer = offer.map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n")).unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n",
            server.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let head = read_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions").then(|| value.trim().to_owned())
        });
        Self { tcp, extensions, inflate: Decompress::new(false) }
    }

    async fn frame(&mut self) -> WireFrame {
        tokio::time::timeout(WAIT, read_frame(&mut self.tcp)).await.expect("a frame within bound")
    }

    /// The next text message as JSON, inflated if it came compressed, and how many payload
    /// bytes it took on the wire.
    async fn json(&mut self) -> (Value, usize, bool) {
        let frame = self.frame().await;
        assert_eq!(frame.opcode, 1, "a text frame");
        let text = if frame.compressed { inflate(&mut self.inflate, &frame.payload) } else { frame.payload.clone() };
        (serde_json::from_slice(&text).unwrap(), frame.payload.len(), frame.compressed)
    }

    /// Sends a masked frame; `deflated` sets RSV1 (the payload must then be deflated).
    async fn send(&mut self, opcode: u8, payload: &[u8], deflated: bool) {
        let mut frame = vec![0x80 | opcode | if deflated { 0x40 } else { 0 }];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [7u8, 1, 3, 9];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&frame).await.unwrap();
    }

    /// Reads until the close frame; returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let frame = self.frame().await;
            if frame.opcode == 8 {
                return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
        }
    }
}

async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap()
}

async fn read_frame(tcp: &mut TcpStream) -> WireFrame {
    let (first, second) = (tcp.read_u8().await.unwrap(), tcp.read_u8().await.unwrap());
    assert_eq!(second & 0x80, 0, "server frames are not masked");
    assert_ne!(first & 0x80, 0, "the server sends whole messages");
    let len = match second & 0x7f {
        126 => tcp.read_u16().await.unwrap() as usize,
        127 => tcp.read_u64().await.unwrap() as usize,
        n => n as usize,
    };
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.unwrap();
    WireFrame { compressed: first & 0x40 != 0, opcode: first & 0x0f, payload }
}

fn inflate(state: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let input = [payload, &TAIL].concat();
    let mut out = Vec::with_capacity(input.len() * 8);
    let start = state.total_in();
    while ((state.total_in() - start) as usize) < input.len() {
        out.reserve(4096);
        let consumed = (state.total_in() - start) as usize;
        state.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync).expect("valid deflate");
    }
    out
}

fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut state = Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    while (state.total_in() as usize) < payload.len() || !out.ends_with(&TAIL) {
        out.reserve(4096);
        let consumed = state.total_in() as usize;
        state.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync).unwrap();
    }
    out.truncate(out.len() - TAIL.len());
    out
}

/// A notification like seed 003's, big enough to be worth compressing.
fn notification(n: usize) -> Value {
    let body = "Your transfer of 250 SBD tokens to the family wallet was approved. ".repeat(8);
    json!({"channels": ["user:u1"], "type": "notification", "data": {"n": n, "title": "Transfer approved", "body": body}})
}

async fn connect(server: &TestServer, path: &str, offer: Option<&str>) -> RawClient {
    let token = server.token("u1", json!({}));
    let mut client = RawClient::connect(server, &format!("{path}?token={token}"), offer).await;
    let (connected, _, _) = client.json().await;
    assert_eq!(connected["type"], "connected", "{connected}");
    client
}

#[tokio::test]
async fn large_events_leave_compressed_and_small_ones_do_not() {
    let server = TestServer::start_with(vec![compression_manifest()], |_| {}).await;
    let mut client = connect(&server, "/ws", Some(OFFER)).await;
    let agreed = client.extensions.clone().expect("the server accepted the offer");
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    assert!(agreed.contains("server_max_window_bits=15"), "{agreed}");

    server.publish(json!({"channels": ["user:u1"], "type": "ping", "data": {}})).await;
    let (small, _, compressed) = client.json().await;
    assert_eq!(small["type"], "ping");
    assert!(!compressed, "a message under min_bytes goes as it is");

    server.publish(notification(1)).await;
    let (first, first_wire, compressed) = client.json().await;
    let raw_len = first.to_string().len();
    assert!(compressed && first["data"]["n"] == 1, "{first}");
    assert!(first_wire * 2 < raw_len, "compressed {first_wire} bytes from about {raw_len}");

    // Context takeover: the second copy refers back to the first.
    server.publish(notification(2)).await;
    let (second, second_wire, _) = client.json().await;
    assert_eq!(second["data"]["n"], 2);
    assert!(second_wire * 2 < first_wire, "second {second_wire} bytes, first {first_wire}");

    // The server inflates what the client compresses.
    let subscribe = json!({"type": "subscribe", "data": {"channel": "news:all"}, "ref": "s1"});
    client.send(1, &deflate(subscribe.to_string().as_bytes()), true).await;
    let (reply, _, _) = client.json().await;
    assert_eq!(reply["ref"], "s1", "{reply}");
    assert!(reply.get("error").is_none(), "{reply}");
}

#[tokio::test]
async fn without_context_takeover_every_message_stands_alone() {
    let server = TestServer::start_with(vec![compression_manifest()], |_| {}).await;
    let mut client = connect(&server, "/fresh", Some(OFFER)).await;
    let agreed = client.extensions.clone().expect("accepted");
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
    assert!(agreed.contains("client_no_context_takeover"), "{agreed}");
    let mut sizes = Vec::new();
    for n in [3, 4] {
        server.publish(notification(n)).await;
        let frame = client.frame().await;
        assert!(frame.compressed);
        // A fresh inflater each time: nothing may refer to an earlier message.
        let event: Value = serde_json::from_slice(&inflate(&mut Decompress::new(false), &frame.payload)).unwrap();
        assert_eq!(event["data"]["n"], n);
        sizes.push(frame.payload.len());
    }
    assert!(sizes[1] * 10 > sizes[0] * 9, "no shrinking from a kept window: {sizes:?}");
}

#[tokio::test]
async fn the_window_size_is_announced() {
    let server = TestServer::start_with(vec![compression_manifest()], |_| {}).await;
    let mut client = connect(&server, "/small", Some("permessage-deflate")).await;
    let agreed = client.extensions.clone().expect("accepted");
    assert!(agreed.contains("server_max_window_bits=10"), "{agreed}");
    assert!(!agreed.contains("client_max_window_bits"), "not offered, so not named: {agreed}");
    server.publish(notification(5)).await;
    let (event, _, compressed) = client.json().await;
    assert!(compressed && event["data"]["n"] == 5, "{event}");
}

#[tokio::test]
async fn endpoints_without_compression_ignore_the_offer() {
    let server = TestServer::start_with(vec![compression_manifest()], |_| {}).await;
    for path in ["/plain", "/off"] {
        let mut client = connect(&server, path, Some(OFFER)).await;
        assert_eq!(client.extensions, None, "{path} declined");
        server.publish(notification(6)).await;
        let (event, _, compressed) = client.json().await;
        assert!(!compressed && event["data"]["n"] == 6, "{path}: {event}");
        // RSV1 without the extension is a protocol error (RFC 6455 section 5.2).
        client.send(1, &deflate(b"{}"), true).await;
        assert_eq!(client.close_code().await, 1002, "{path}");
    }
    // A client that offers nothing gets nothing, on a compressing endpoint too.
    let client = connect(&server, "/ws", None).await;
    assert_eq!(client.extensions, None);
}

#[tokio::test]
async fn a_message_that_inflates_past_the_limit_is_refused() {
    let server = TestServer::start_with(vec![compression_manifest()], |_| {}).await;
    let mut client = connect(&server, "/ws", Some(OFFER)).await;
    // 4 MiB of spaces deflate to a few KiB; the limit applies to the inflated size.
    let bomb = deflate(&vec![b' '; 4 << 20]);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    client.send(1, &bomb, true).await;
    assert_eq!(client.close_code().await, 1009);
    // A stream that is not deflate fails the connection too, and the server goes on.
    let mut client = connect(&server, "/ws", Some(OFFER)).await;
    client.send(1, &[0xff, 0xfe, 0xfd, 0xfc, 0xfb], true).await;
    // The WebSocket layer (yawc) closes first, with 1011, before the session's 1007.
    assert_eq!(client.close_code().await, 1011, "not a deflate stream");
    let mut again = connect(&server, "/ws", Some(OFFER)).await;
    server.publish(notification(7)).await;
    assert_eq!(again.json().await.0["data"]["n"], 7);
}
