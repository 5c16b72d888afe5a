//! The load generator: opens N WebSocket clients spread over source addresses
//! 127.0.0.2-127.0.0.249, publishes through the target's HTTP API with a timestamp in every
//! event, and measures what arrives. Every loop is bounded in count and time. Prints one
//! JSON line per result for bench/run.py.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Switchboard: JWT per user, the real server API.
    Switchboard,
    /// A peer with the shared contract: /ws?user=ID and POST /publish {user?, event}.
    Peer,
    /// A Socket.IO v4 peer (Engine.IO over WebSocket), same /publish contract.
    Socketio,
    /// A Pusher-protocol server (Sockudo): public channels `broadcast` and `user-ID`, the
    /// signed HTTP events API; `--key` is the app secret.
    Pusher,
    /// Switchboard through its Socket.IO endpoint (`/socket.io/`, the token in the query),
    /// published to through the same HTTP API.
    SwitchboardSocketio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Connect N clients, report the connect rate, hold until stdin closes.
    Idle,
    /// Publish to everyone at --rate publishes/s for --seconds.
    Broadcast,
    /// Publish to one user at a time at --rate messages/s for --seconds.
    Personal,
    /// Switchboard: create a notification for one user at a time (POST /notifications, stored
    /// in the inbox, pushed as `notification:new`) at --rate per second for --seconds.
    Notify,
    /// Switchboard: clients in pairs, each a direct conversation; the first of each pair sends
    /// `chat:send` on its socket (--rate in total), the second's `chat:message` is timed.
    Chat,
}

#[derive(Debug, Parser)]
pub(crate) struct Args {
    #[arg(value_enum)]
    pub(crate) scenario: Scenario,
    #[arg(long, value_enum)]
    kind: Kind,
    /// Server address, e.g. 127.0.0.1:8080; several nodes of one cluster comma-separated
    /// (client i connects to node i mod N, publisher j publishes through node j mod N).
    #[arg(long, value_delimiter = ',', required = true)]
    addr: Vec<SocketAddr>,
    /// Clients to open.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Publishes (broadcast) or messages (personal) per second.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// How long to publish.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Events per HTTP request (Switchboard's batch endpoint when above 1).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Switchboard: the app's JWT secret.
    #[arg(long, default_value = "bench-secret")]
    secret: String,
    /// Switchboard: the app's API key.
    #[arg(long, default_value = "sk_bench")]
    key: String,
    /// Bytes of notification text in every event (0: only the timestamp and counter).
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Clients offer permessage-deflate (RFC 7692); the server may decline.
    #[arg(long)]
    deflate: bool,
}

mod chat;
mod http;
mod target;
mod wire;

use target::{Socket, Target};
use yawc::Frame;

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default()
}

/// What every client saw. Each reader owns its latency list (an uncontended lock), and the
/// lists are gathered at the end.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    /// Bytes every client has read from its socket, WebSocket framing included.
    wire: Arc<AtomicU64>,
    per_client: std::sync::Mutex<Vec<Arc<std::sync::Mutex<Vec<u32>>>>>,
}

impl Tally {
    fn client(&self) -> Arc<std::sync::Mutex<Vec<u32>>> {
        let list = Arc::new(std::sync::Mutex::new(Vec::new()));
        self.per_client.lock().unwrap().push(list.clone());
        list
    }

    fn latencies(&self) -> Vec<u32> {
        let lists = self.per_client.lock().unwrap();
        let mut all: Vec<u32> = lists.iter().flat_map(|l| l.lock().unwrap().clone()).collect();
        all.sort_unstable();
        all
    }
}

/// Reads the `"t":` timestamp of a bench event without parsing the whole frame. Pusher
/// carries the event's data as a JSON string, so the quotes may be escaped (`\"t\":`).
fn sent_at(frame: &str) -> Option<u64> {
    let (_, rest) = frame.split_once("\"t\":").or_else(|| frame.split_once("\\\"t\\\":"))?;
    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn open(target: &Target, user: usize, wire: Arc<AtomicU64>) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(target::source_of(user))?;
    let stream = wire::Counted::new(socket.connect(target.node_of(user)).await?, wire);
    let options = if target.args.deflate { wire::offer() } else { yawc::Options::default() };
    let mut ws = yawc::WebSocket::handshake(target.ws_url(user).parse()?, stream, options).await?;
    target.join(&mut ws, user).await?;
    Ok(ws)
}

/// Opens every client (64 at a time) and starts its reader; returns the connect time. In the
/// chat scenario the first of each pair keeps its sending half in `senders`.
async fn connect_all(target: &Arc<Target>, tally: &Arc<Tally>, senders: &chat::Senders) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let mut opening = Vec::with_capacity(target.args.clients);
    let counted: fn(&str) -> bool = match target.args.scenario {
        Scenario::Chat => chat::counted,
        _ => |_| true,
    };
    for user in 0..target.args.clients {
        let (target, tally, gate, senders) = (target.clone(), tally.clone(), gate.clone(), senders.clone());
        opening.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let ws = tokio::time::timeout(Duration::from_secs(30), open(&target, user, tally.wire.clone())).await??;
            drop(permit);
            match senders.get(user / 2).filter(|_| user % 2 == 0) {
                Some(place) => {
                    let (sink, stream) = ws.split();
                    *place.lock().await = Some(sink);
                    tokio::spawn(read(stream, tally, counted));
                }
                None => drop(tokio::spawn(read(ws, tally, counted))),
            }
            anyhow::Ok(())
        }));
    }
    for task in opening {
        task.await?.context("a client failed to connect")?;
    }
    Ok(started.elapsed())
}

/// Counts and times every timestamped frame that `counted` accepts.
async fn read(mut ws: impl Stream<Item = Frame> + Unpin, tally: Arc<Tally>, counted: fn(&str) -> bool) {
    let latencies = tally.client();
    while let Some(frame) = ws.next().await {
        if frame.opcode() == yawc::OpCode::Text && counted(frame.as_str()) {
            if let Some(t) = sent_at(frame.as_str()) {
                latencies.lock().unwrap().push((now_nanos().saturating_sub(t) / 1000) as u32);
                tally.received.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Concurrent publishers, each with its own keep-alive connection.
const PUBLISHERS: u64 = 64;

/// Publishes at the requested rate for the requested time; returns events sent. Request `i`
/// is due at `start + i * period`; a publisher that falls behind sends at once, so a server
/// slower than the rate shows as fewer deliveries per second, not as a queue in here.
async fn publish_paced(target: &Arc<Target>) -> anyhow::Result<u64> {
    let args = &target.args;
    let requests = (args.rate * args.seconds).div_ceil(args.batch as u64);
    let period = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let (start, next) = (tokio::time::Instant::now(), Arc::new(AtomicU64::new(0)));
    let publishers = (0..PUBLISHERS.min(requests)).map(|publisher| {
        let (target, next) = (target.clone(), next.clone());
        tokio::spawn(async move {
            let mut connection = http::Connection::new(target.node_of(publisher as usize));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return anyhow::Ok(());
                }
                tokio::time::sleep_until(start + period.mul_f64(i as f64)).await;
                let post = target.publish(&events_of(&target.args, i));
                let status = connection.send(&post).await?;
                anyhow::ensure!((200..300).contains(&status), "publish answered {status}");
            }
        })
    });
    for publisher in publishers.collect::<Vec<_>>() {
        publisher.await??;
    }
    Ok(requests * args.batch as u64)
}

/// The events of request `i`: to everyone, or each to the next user in turn.
fn events_of(args: &Args, i: u64) -> Vec<target::Event> {
    let batch = args.batch as u64;
    (i * batch..(i + 1) * batch)
        .map(|k| ((args.scenario != Scenario::Broadcast).then_some(k as usize % args.clients), k))
        .collect()
}

/// One broadcast with the payload before an idle hold, so that each connection has been sent a
/// message of that size (and, with compression, holds whatever state that leaves behind).
async fn warm(target: &Target, tally: &Tally) -> anyhow::Result<()> {
    let post = target.publish(&[(None, 0)]);
    let status = http::Connection::new(target.node_of(0)).send(&post).await?;
    anyhow::ensure!((200..300).contains(&status), "publish answered {status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.received.load(Ordering::Relaxed) < target.args.clients as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.scenario == Scenario::Chat && args.kind != Kind::Switchboard {
        anyhow::bail!("the chat scenario sends chat:send in Switchboard's native protocol: use --kind switchboard");
    }
    let target = Arc::new(Target { args });
    let tally = Arc::new(Tally::default());
    let senders = chat::senders(if target.args.scenario == Scenario::Chat { target.args.clients } else { 0 });
    let connect = connect_all(&target, &tally, &senders).await?;
    let clients = target.args.clients;
    let rate = clients as f64 / connect.as_secs_f64();
    if target.args.scenario == Scenario::Idle {
        if target.args.payload > 0 {
            warm(&target, &tally).await?;
        }
        println!(
            "{}",
            json!({"scenario": "idle", "clients": clients, "connect_secs": connect.as_secs_f64(), "connects_per_sec": rate})
        );
        // Hold the connections while the runner reads the server's memory.
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
        return Ok(());
    }
    let conversations = match target.args.scenario {
        Scenario::Chat => chat::conversations(&target).await?,
        _ => Vec::new(),
    };
    let (started, wire_before) = (Instant::now(), tally.wire.load(Ordering::Relaxed));
    let sent = match target.args.scenario {
        Scenario::Chat => chat::send_paced(&target, senders, conversations).await?,
        _ => publish_paced(&target).await?,
    };
    let publish_secs = started.elapsed().as_secs_f64();
    let per_event = if target.args.scenario == Scenario::Broadcast { clients as u64 } else { 1 };
    let expected = sent * per_event;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = tally.received.load(Ordering::Relaxed);
    let wire_bytes = tally.wire.load(Ordering::Relaxed) - wire_before;
    let latencies = tally.latencies();
    let result = json!({
        "scenario": format!("{:?}", target.args.scenario).to_lowercase(),
        "clients": clients, "rate": target.args.rate, "batch": target.args.batch,
        "sent": sent, "expected": expected, "received": received, "lost": expected.saturating_sub(received),
        "deliveries_per_sec": received as f64 / publish_secs,
        "wire_bytes_per_delivery": wire_bytes as f64 / received.max(1) as f64,
        "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99), "p999_ms": percentile(&latencies, 0.999),
    });
    println!("{result}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_found_in_every_protocol() {
        assert_eq!(super::sent_at(r#"{"type":"event","data":{"t":42,"k":1}}"#), Some(42));
        assert_eq!(super::sent_at(r#"42["bench",{"t": 7}]"#), Some(7));
        assert_eq!(super::sent_at(r#"{"event":"bench","data":"{\"t\":9,\"k\":0}"}"#), Some(9));
        assert_eq!(super::sent_at(r#"{"type":"connected"}"#), None);
    }
}
