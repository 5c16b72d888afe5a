//! The harness's own binaries, driven the way bench/run.py drives them: the bare reference
//! answers a WebSocket upgrade and delivers what is published to whom it names, and the load
//! generator measures it. (Building these tests also builds the binaries, so CI's quick
//! benchmark reuses the release build the test step made.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// The bare reference on a free port; killed when dropped.
struct Bare {
    child: Child,
    addr: SocketAddr,
}

impl Bare {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bare"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the bare reference starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening ").expect("it says where it listens").parse().unwrap();
        Self { child, addr }
    }

    /// `POST /publish`; the number of connections the frame was queued for.
    fn publish(&self, body: &str) -> u64 {
        let mut http = TcpStream::connect(self.addr).unwrap();
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        http.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        http.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let json: serde_json::Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        json["delivered"].as_u64().unwrap()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(client: &mut Client) -> String {
    let message = tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("a frame in time");
    match message.unwrap().unwrap() {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_bare_reference_delivers_to_the_user_named_and_to_everyone() {
    let bare = Bare::start();
    let (mut ada, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?user=ada", bare.addr)).await.unwrap();
    let (mut bob, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?user=bob", bare.addr)).await.unwrap();
    // A frame longer than 125 bytes takes the 16-bit length form.
    let long = "x".repeat(300);
    assert_eq!(bare.publish(&format!(r#"{{"user":"ada","event":{{"n":1,"text":"{long}"}}}}"#)), 1);
    assert_eq!(next_text(&mut ada).await, format!(r#"{{"n":1,"text":"{long}"}}"#));
    assert_eq!(bare.publish(r#"{"event":{"n":2}}"#), 2);
    assert_eq!(next_text(&mut ada).await, r#"{"n":2}"#);
    assert_eq!(next_text(&mut bob).await, r#"{"n":2}"#, "bob saw only the broadcast");
    // A client that closes is forgotten.
    ada.send(Message::Close(None)).await.unwrap();
    while ada.next().await.is_some() {}
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while bare.publish(r#"{"event":{"n":3}}"#) != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the closed client is still counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn the_load_generator_measures_a_broadcast_without_loss() {
    let bare = Bare::start();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["broadcast", "--kind", "peer", "--addr", &bare.addr.to_string()])
        .args(["--clients", "20", "--rate", "20", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["lost"], 0, "{result}");
    assert!(result["received"].as_u64().unwrap() >= 20 * 10, "{result}");
    assert_eq!(result["received"], result["expected"], "{result}");
}
