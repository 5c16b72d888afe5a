//! The load generator: opens N WebSocket clients spread over source addresses
//! 127.0.0.2-127.0.0.249, publishes through the target's HTTP API with a timestamp in every
//! event, and measures what arrives. Every loop is bounded in count and time. Prints one
//! JSON line per result for bench/run.py.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Switchboard: JWT per user, the real server API.
    Switchboard,
    /// A peer with the shared contract: /ws?user=ID and POST /publish {user?, event}.
    Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Connect N clients, report the connect rate, hold until stdin closes.
    Idle,
    /// Publish to everyone at --rate publishes/s for --seconds.
    Broadcast,
    /// Publish to one user at a time at --rate messages/s for --seconds.
    Personal,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum)]
    kind: Kind,
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
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
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default()
}

struct Target {
    args: Args,
    http: reqwest::Client,
}

impl Target {
    fn ws_url(&self, user: usize) -> String {
        let addr = self.args.addr;
        match self.args.kind {
            Kind::Switchboard => {
                let claims = json!({"sub": format!("u{user}"), "exp": now_nanos() / 1_000_000_000 + 86_400});
                let claims = claims.as_object().cloned().unwrap_or_default();
                let token =
                    switchboard_auth::mint(switchboard_auth::Algorithm::HS256, self.args.secret.as_bytes(), &claims)
                        .unwrap_or_default();
                format!("ws://{addr}/ws?token={token}")
            }
            Kind::Peer => format!("ws://{addr}/ws?user=u{user}"),
        }
    }

    /// One HTTP request carrying `events` (user `None` means everyone).
    async fn publish(&self, events: &[(Option<usize>, u64)]) -> anyhow::Result<()> {
        let addr = self.args.addr;
        let request = match self.args.kind {
            Kind::Switchboard => {
                let event = |(user, k): &(Option<usize>, u64)| {
                    let channel = user.map_or("broadcast".to_owned(), |u| format!("user:u{u}"));
                    json!({"channels": [channel], "type": "bench", "data": {"t": now_nanos(), "k": k}})
                };
                let app = format!("http://{addr}/api/v1/apps/bench");
                let (url, body) = match events {
                    [one] => (format!("{app}/publish"), event(one)),
                    many => {
                        (format!("{app}/publish/batch"), json!({"events": many.iter().map(event).collect::<Vec<_>>()}))
                    }
                };
                self.http.post(url).bearer_auth(&self.args.key).body(body.to_string())
            }
            Kind::Peer => {
                let (user, k) = events[0];
                let body = json!({"user": user.map(|u| format!("u{u}")), "event": {"type": "bench", "data": {"t": now_nanos(), "k": k}}});
                self.http
                    .post(format!("http://{addr}/publish"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
            }
        };
        let response = request.send().await?;
        anyhow::ensure!(response.status().is_success(), "publish answered {}", response.status());
        Ok(())
    }
}

/// What every client saw. Each reader owns its latency list (an uncontended lock), and the
/// lists are gathered at the end.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
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

/// Reads the `"t":` timestamp of a bench event without parsing the whole frame.
fn sent_at(frame: &str) -> Option<u64> {
    let start = frame.find("\"t\":")? + 4;
    let digits: String = frame[start..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn open(
    target: &Target,
    user: usize,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (user % 248) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(target.args.addr).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(target.ws_url(user), stream).await?;
    if target.args.kind == Kind::Switchboard {
        // Subscriptions exist once `connected` arrives.
        while let Some(message) = ws.next().await {
            if matches!(message?, Message::Text(t) if t.contains("\"connected\"")) {
                break;
            }
        }
    }
    Ok(ws)
}

/// Opens every client (256 at a time) and starts its reader; returns the connect time.
async fn connect_all(target: &Arc<Target>, tally: &Arc<Tally>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(256));
    let mut opening = Vec::with_capacity(target.args.clients);
    for user in 0..target.args.clients {
        let (target, tally, gate) = (target.clone(), tally.clone(), gate.clone());
        opening.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let ws = tokio::time::timeout(Duration::from_secs(30), open(&target, user)).await??;
            drop(permit);
            tokio::spawn(read(ws, tally));
            anyhow::Ok(())
        }));
    }
    for task in opening {
        task.await?.context("a client failed to connect")?;
    }
    Ok(started.elapsed())
}

async fn read(mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, tally: Arc<Tally>) {
    let latencies = tally.client();
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            if let Some(t) = sent_at(&text) {
                latencies.lock().unwrap().push((now_nanos().saturating_sub(t) / 1000) as u32);
                tally.received.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Publishes at the requested rate for the requested time; returns events sent.
async fn publish_paced(target: &Arc<Target>) -> anyhow::Result<u64> {
    let args = &target.args;
    let total = args.rate * args.seconds;
    let requests = total.div_ceil(args.batch as u64);
    let period = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let gate = Arc::new(Semaphore::new(64));
    let mut sent = 0u64;
    let mut tasks = Vec::new();
    for _ in 0..requests {
        tick.tick().await;
        let events: Vec<(Option<usize>, u64)> = (0..args.batch as u64)
            .map(|i| {
                let k = sent + i;
                let user = (args.scenario == Scenario::Personal).then_some(k as usize % args.clients);
                (user, k)
            })
            .collect();
        sent += events.len() as u64;
        let (target, permit) = (target.clone(), gate.clone().acquire_owned().await?);
        tasks.push(tokio::spawn(async move {
            let result = target.publish(&events).await;
            drop(permit);
            result
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(sent)
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
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let target = Arc::new(Target { args, http });
    let tally = Arc::new(Tally::default());
    let connect = connect_all(&target, &tally).await?;
    let clients = target.args.clients;
    let rate = clients as f64 / connect.as_secs_f64();
    if target.args.scenario == Scenario::Idle {
        println!(
            "{}",
            json!({"scenario": "idle", "clients": clients, "connect_secs": connect.as_secs_f64(), "connects_per_sec": rate})
        );
        // Hold the connections while the runner reads the server's memory.
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
        return Ok(());
    }
    let started = Instant::now();
    let sent = publish_paced(&target).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    let per_event = if target.args.scenario == Scenario::Broadcast { clients as u64 } else { 1 };
    let expected = sent * per_event;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = tally.received.load(Ordering::Relaxed);
    let latencies = tally.latencies();
    let result = json!({
        "scenario": format!("{:?}", target.args.scenario).to_lowercase(),
        "clients": clients, "rate": target.args.rate, "batch": target.args.batch,
        "sent": sent, "expected": expected, "received": received, "lost": expected.saturating_sub(received),
        "deliveries_per_sec": received as f64 / publish_secs,
        "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99), "p999_ms": percentile(&latencies, 0.999),
    });
    println!("{result}");
    Ok(())
}
