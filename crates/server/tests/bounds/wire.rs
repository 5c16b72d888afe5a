//! A WebSocket client with no WebSocket library, for floods a well-behaved library would not
//! send: the handshake, masked frames and deflate by hand, and reads only when asked.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) struct RawSocket {
    pub(crate) tcp: TcpStream,
}

impl RawSocket {
    /// Upgrades `path` on `addr`, offering `extensions` when given; panics unless it gets 101.
    pub(crate) async fn connect(addr: &str, path: &str, extensions: Option<&str>) -> Self {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let offer = extensions.map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n")).unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            tcp.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { tcp }
    }

    /// Writes one masked frame; `false` once the server stopped taking bytes (closed, or
    /// not reading for `patience`).
    pub(crate) async fn send(&mut self, opcode: u8, payload: &[u8], rsv1: bool, patience: Duration) -> bool {
        let frame = frame(opcode, payload, rsv1);
        matches!(tokio::time::timeout(patience, self.tcp.write_all(&frame)).await, Ok(Ok(())))
    }

    /// Reads and discards until the server ends the connection; whether it did within `limit`.
    pub(crate) async fn ended_within(&mut self, limit: Duration) -> bool {
        let mut buffer = vec![0u8; 64 << 10];
        let read_all = async {
            loop {
                match self.tcp.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(limit, read_all).await.is_ok()
    }
}

/// A client frame: FIN, the opcode, RSV1 when deflated, a zero mask (the payload as is).
pub(crate) fn frame(opcode: u8, payload: &[u8], rsv1: bool) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode | if rsv1 { 0x40 } else { 0 }];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

impl RawSocket {
    /// The next text frame from the server (others skipped), within `limit`.
    pub(crate) async fn text(&mut self, limit: Duration) -> String {
        tokio::time::timeout(limit, async {
            loop {
                let (opcode, payload) = self.frame().await;
                if opcode == 1 {
                    return String::from_utf8(payload).unwrap();
                }
                assert_ne!(opcode, 8, "closed while waiting for a text frame");
            }
        })
        .await
        .expect("a text frame in time")
    }

    /// One unmasked server frame: its opcode and payload.
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.tcp.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.tcp.read_exact(&mut n).await.unwrap();
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                self.tcp.read_exact(&mut n).await.unwrap();
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        self.tcp.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    }
}
