//! The bare broadcaster: the least a hub can do. A user map, a bounded queue and a writer
//! task per connection, one pre-encoded frame shared by every target, every queued frame
//! written before one flush. No auth, no channels, no features: the reference that tells
//! what this machine and the load generator allow.
//!
//! WebSocket connections go straight to tokio-tungstenite; everything else (the publish
//! API) goes to hyper. A peek at the request line decides, so an idle connection carries
//! nothing of the HTTP stack.
//!
//! Contract shared with the peers under bench/peers: connect to `/ws?user=ID`; publish with
//! `POST /publish {"user": ID?, "event": {...}}` (no user: everyone).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames one connection may have queued before new ones are dropped.
const QUEUE: usize = 1024;

/// One connection's number and queue.
type Conn = (u64, mpsc::Sender<Utf8Bytes>);

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

/// The user named in `?user=`.
fn user_of(request: &Request) -> String {
    let query = request.uri().query().unwrap_or_default();
    query.split('&').find_map(|pair| pair.strip_prefix("user=")).unwrap_or_default().to_owned()
}

// tungstenite's handshake callback fixes the (large) error type.
#[allow(clippy::result_large_err)]
async fn session(hub: Arc<Hub>, stream: TcpStream) {
    let mut user = String::new();
    let remember = |request: &Request, response: Response| {
        user = user_of(request);
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(4096);
    let Ok(socket) = tokio_tungstenite::accept_hdr_async_with_config(stream, remember, Some(config)).await else {
        return;
    };
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(QUEUE);
    hub.users.lock().unwrap().entry(user.clone()).or_default().push((id, tx));
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
            // Everything already queued goes out before the one flush.
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
    writer.abort();
    let mut users = hub.users.lock().unwrap();
    if let Some(conns) = users.get_mut(&user) {
        conns.retain(|(c, _)| *c != id);
        if conns.is_empty() {
            users.remove(&user);
        }
    }
}

async fn publish(State(hub): State<Arc<Hub>>, Json(p): Json<Publish>) -> Json<serde_json::Value> {
    let frame = Utf8Bytes::from(p.event.to_string());
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
