//! The bare broadcaster: the least a hub can do. A user map, a bounded queue and a writer
//! task per connection, one pre-encoded frame shared by every target, every queued frame
//! written with one `writev`. No auth, no channels, no features: the reference that tells
//! what this machine and the load generator allow.
//!
//! The WebSocket side is raw tokio: the upgrade is answered by hand (the accept key and
//! nothing else), server frames are encoded once per publish, and a connection's reader
//! borrows a stack buffer only while a read is ready, so an idle connection holds its two
//! tasks, its queue and the socket. Everything else (the publish API) goes to hyper; a peek
//! at the request line decides.
//!
//! Contract shared with the peers under bench/peers: connect to `/ws?user=ID`; publish with
//! `POST /publish {"user": ID?, "event": {...}}` (no user: everyone).

use std::collections::HashMap;
use std::io::{ErrorKind, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Frames one connection may have queued before new ones are dropped.
const QUEUE: usize = 1024;
/// The largest upgrade request read; the load generator's is about 250 bytes.
const REQUEST_HEAD: usize = 4096;
/// Frames gathered into one `writev`.
const WRITE_BATCH: usize = 64;

/// One connection's number and queue.
type Conn = (u64, mpsc::Sender<Bytes>);

#[derive(Default)]
struct Hub {
    users: Mutex<HashMap<String, Vec<Conn>>>,
    next: AtomicU64,
}

#[derive(Deserialize)]
struct Publish {
    user: Option<String>,
    event: serde_json::Value,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9100".into());
    let hub = Arc::new(Hub::default());
    let api = Router::new().route("/publish", post(publish)).with_state(hub.clone());
    let listener = TcpListener::bind(&bind).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let (hub, api) = (hub.clone(), api.clone());
        tokio::spawn(async move {
            let mut head = [0u8; 7];
            if stream.peek(&mut head).await.is_ok() && &head == b"GET /ws" {
                session(hub, stream).await;
            } else {
                let service = TowerToHyperService::new(api);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            }
        });
    }
}

/// Reads the upgrade request: the user named in `?user=` and the 101 response, or `None` when
/// the request is not a WebSocket upgrade this reference understands.
async fn handshake(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= REQUEST_HEAD || stream.read_buf(&mut head).await.ok()? == 0 {
            return None;
        }
    }
    let text = std::str::from_utf8(&head).ok()?;
    let target = text.lines().next()?.split(' ').nth(1)?;
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let user = query.split('&').find_map(|pair| pair.strip_prefix("user=")).unwrap_or_default();
    let key = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim())
    })?;
    let accept = base64::engine::general_purpose::STANDARD
        .encode(Sha1::new().chain_update(key).chain_update("258EAFA5-E914-47DA-95CA-C5AB0DC85B11").finalize());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    Some((user.to_owned(), response))
}

async fn session(hub: Arc<Hub>, mut stream: TcpStream) {
    let Some((user, response)) = handshake(&mut stream).await else {
        return;
    };
    // Registered before the 101 goes out: a client that saw it is reachable.
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    hub.users.lock().unwrap().entry(user.clone()).or_default().push((id, tx));
    if stream.write_all(response.as_bytes()).await.is_ok() {
        let (read, write) = stream.into_split();
        let writer = tokio::spawn(write_frames(write, rx));
        read_until_close(read).await;
        writer.abort();
    }
    let mut users = hub.users.lock().unwrap();
    if let Some(conns) = users.get_mut(&user) {
        conns.retain(|(c, _)| *c != id);
        if conns.is_empty() {
            users.remove(&user);
        }
    }
}

/// Waits for the client to leave: end of stream, an error, or a close frame at the start of
/// a read (clients send nothing else here, so no frame is parsed). The buffer lives on the
/// stack between two awaits, not in the task.
async fn read_until_close(read: OwnedReadHalf) {
    loop {
        if read.readable().await.is_err() {
            return;
        }
        let mut buf = [0u8; 256];
        match read.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) if buf[0] & 0x0f == 0x8 => return,
            Err(e) if e.kind() != ErrorKind::WouldBlock => return,
            _ => {}
        }
    }
}

/// Writes queued frames, everything already queued in one `writev`.
async fn write_frames(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(frame) = rx.recv().await {
        let mut batch = vec![frame];
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        if write_all(&mut write, &batch).await.is_err() {
            return;
        }
    }
}

async fn write_all(write: &mut OwnedWriteHalf, frames: &[Bytes]) -> std::io::Result<()> {
    let total: usize = frames.iter().map(Bytes::len).sum();
    let mut written = 0;
    while written < total {
        let mut skip = written;
        let slices: Vec<IoSlice<'_>> = frames
            .iter()
            .filter_map(|frame| {
                let start = skip.min(frame.len());
                skip -= start;
                (start < frame.len()).then(|| IoSlice::new(&frame[start..]))
            })
            .collect();
        match write.write_vectored(&slices).await? {
            0 => return Err(ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    Ok(())
}

/// An unmasked text frame (RFC 6455 5.2), encoded once for every target.
fn text_frame(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(0x81);
    match payload.len() {
        len @ 0..=125 => frame.put_u8(len as u8),
        len @ 126..=0xffff => {
            frame.put_u8(126);
            frame.put_u16(len as u16);
        }
        len => {
            frame.put_u8(127);
            frame.put_u64(len as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

async fn publish(State(hub): State<Arc<Hub>>, Json(p): Json<Publish>) -> Json<serde_json::Value> {
    let frame = text_frame(p.event.to_string().as_bytes());
    let users = hub.users.lock().unwrap();
    let mut delivered = 0;
    let mut send = |conns: &Vec<Conn>| {
        for (_, tx) in conns {
            delivered += usize::from(tx.try_send(frame.clone()).is_ok());
        }
    };
    match &p.user {
        Some(user) => users.get(user).into_iter().for_each(&mut send),
        None => users.values().for_each(&mut send),
    }
    Json(serde_json::json!({ "delivered": delivered }))
}
