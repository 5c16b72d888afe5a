//! The chat scenario (Switchboard only): clients in pairs, each pair one direct conversation
//! created through the HTTP API. The first of each pair sends `chat:send` over its own socket,
//! the pairs taking turns at the offered rate in total; what is counted and timed is the
//! second's `chat:message`, the push to a live device of the other participant. (The sender's
//! own `reply` and `chat:message:sent` carry the same content and are not counted.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use serde_json::json;
use tokio::sync::Mutex;
use yawc::Frame;

use crate::http::{Connection, Post};
use crate::now_nanos;
use crate::target::{Socket, Target};

/// Each pair's sending half, filled in as the first of the pair connects.
pub(crate) type Senders = Arc<Vec<Mutex<Option<SplitSink<Socket, Frame>>>>>;

/// Concurrent senders (each takes the next due message, whichever pair it is for).
const SENDERS: u64 = 64;

/// Empty places for `clients / 2` pairs' senders.
pub(crate) fn senders(clients: usize) -> Senders {
    Arc::new((0..clients / 2).map(|_| Mutex::new(None)).collect())
}

/// Whether a frame is the push counted: `chat:message`, not `chat:message:sent` or `reply`.
pub(crate) fn counted(frame: &str) -> bool {
    frame.contains(r#""type":"chat:message","#)
}

/// One direct conversation per pair (users `u{2k}` and `u{2k+1}`); their ids, by pair.
pub(crate) async fn conversations(target: &Target) -> anyhow::Result<Vec<String>> {
    let mut connection = Connection::new(target.node_of(0));
    let mut ids = Vec::with_capacity(target.args.clients / 2);
    for pair in 0..target.args.clients / 2 {
        let (first, second) = (format!("u{}", 2 * pair), format!("u{}", 2 * pair + 1));
        let body = json!({"type": "direct", "participants": [&first, &second], "created_by": &first});
        let post = Post {
            path: "/api/v1/apps/bench/conversations".into(),
            bearer: Some(target.args.key.clone()),
            body: body.to_string(),
        };
        let (status, body) = connection.exchange(&post).await?;
        anyhow::ensure!((200..300).contains(&status), "creating a conversation answered {status}");
        let conversation: serde_json::Value = serde_json::from_slice(&body)?;
        let id = conversation["conversationId"].as_str().context("the conversation has an id")?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// Sends `rate * seconds` messages, message `i` due at `start + i / rate` from pair
/// `i mod pairs`; returns how many were sent. As with publishing, a sender that falls behind
/// sends at once, so a slow server shows as fewer deliveries per second.
pub(crate) async fn send_paced(
    target: &Arc<Target>,
    senders: Senders,
    conversations: Vec<String>,
) -> anyhow::Result<u64> {
    let messages = target.args.rate * target.args.seconds;
    let period = Duration::from_secs_f64(1.0 / target.args.rate as f64);
    let (start, next) = (tokio::time::Instant::now(), Arc::new(AtomicU64::new(0)));
    let conversations = Arc::new(conversations);
    let tasks = (0..SENDERS.min(messages)).map(|_| {
        let (senders, conversations, next) = (senders.clone(), conversations.clone(), next.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    return anyhow::Ok(());
                }
                tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
                let pair = i as usize % conversations.len();
                let content = json!({"t": now_nanos(), "k": i}).to_string();
                let send =
                    json!({"type": "chat:send", "data": {"conversationId": conversations[pair], "content": content}});
                let mut sender = senders[pair].lock().await;
                let sender = sender.as_mut().context("every sender connected")?;
                sender.send(Frame::text(send.to_string())).await?;
            }
        })
    });
    for task in tasks.collect::<Vec<_>>() {
        task.await??;
    }
    Ok(messages)
}
