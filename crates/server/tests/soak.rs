//! Soak and chaos, bounded in count and time, on loopback: the binary as a real process,
//! up to thousands of real WebSocket clients. Each scenario prints what it checked and fails on a
//! lost or repeated event, a ghost in presence, or memory that keeps growing once the load
//! has stopped. (Killing a node under load is crates/server/tests/failover.rs.)

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use switchboard_auth::{mint, Algorithm};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;

const SECRET: &str = "soak-secret-0123456789";
const KEY: &str = "sk_soak_0123456789";
/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One server process with its manifest, in a directory of its own.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(manifest: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("soak.json"), manifest.to_string()).unwrap();
        std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        std::fs::write(dir.path().join("key.txt"), KEY).unwrap();
        let args = ["--manifest", "soak.json", "--store", "sqlite://soak.db"];
        let (child, base) = common::serve(dir.path(), &args, "warn,switchboard=info").await;
        Self { child, base, http: reqwest::Client::new(), _dir: dir }
    }

    /// The server's resident memory, in MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
    }

    /// Samples memory once the load has stopped: it may stay where it is, never keep growing.
    async fn assert_memory_settles(&self, scenario: &str, peak: f64) {
        let mut samples = Vec::new();
        for _ in 0..6 {
            samples.push(self.rss_mib());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (first, last) = (samples[0], samples[samples.len() - 1]);
        let rising = samples.windows(2).all(|w| w[1] > w[0]);
        println!("{scenario}: RSS peak {peak:.1} MiB under load; after it {first:.1} -> {last:.1} MiB over 3 s");
        assert!(!(rising && last - first > 2.0), "{scenario}: memory keeps growing after the load: {samples:?}");
    }

    async fn publish_batch(&self, events: Vec<Value>) {
        for chunk in events.chunks(100) {
            let url = format!("{}/api/v1/apps/soak/publish/batch", self.base);
            let response = self.http.post(url).bearer_auth(KEY).json(&json!({"events": chunk})).send().await.unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        }
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/api/v1/apps/soak{path}", self.base);
        self.http.get(url).bearer_auth(KEY).send().await.unwrap().json().await.unwrap()
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name}{{"))).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn url(&self, user: &str, groups: &[&str], query: &str) -> String {
        let now = switchboard_hub::unix_ms() / 1000;
        let claims = json!({"sub": user, "exp": now + 600, "groups": groups});
        let claims: Map<String, Value> = claims.as_object().unwrap().clone();
        let token = mint(Algorithm::HS256, SECRET.as_bytes(), &claims).unwrap();
        format!("{}/ws?token={token}{query}", self.base.replacen("http", "ws", 1))
    }

    async fn open(&self, user: &str, groups: &[&str], query: &str) -> Socket {
        let url = self.url(user, groups, query);
        let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
        assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "connected");
        ws
    }

    /// A client whose kernel receive buffer stays small (64 kB; loopback lets it grow to
    /// 32 MB), so that once it stops reading, the server's queue for it fills after a few
    /// megabytes (the server's own send buffer may grow to 4 MB) instead of tens.
    async fn open_slow(&self, user: &str, groups: &[&str]) -> Socket {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(65_536).unwrap();
        let stream = socket.connect(self.base.trim_start_matches("http://").parse().unwrap()).await.unwrap();
        let url = self.url(user, groups, "");
        let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.unwrap();
        assert_eq!(next_frame(&mut ws).await.unwrap()["type"], "connected");
        ws
    }
}

fn manifest() -> Value {
    json!({
        "slug": "soak",
        "auth_policy": {"jwt": {"secret_file": "secret.txt"}},
        "api_key_file": "key.txt",
        "websockets": {"realtime": {"path": "/ws"}},
        "presence": {"offline_grace": "1s"},
        "limits": {"max_message_bytes": 65536}
    })
}

/// The next JSON frame, skipping presence signals; when the socket ends, its close code.
async fn next_frame(ws: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame within the bound") {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).map_err(|_| None)?;
                if !frame["type"].as_str().is_some_and(|t| t.starts_with("presence:")) {
                    return Ok(frame);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            None | Some(Err(_)) => return Err(None),
            Some(Ok(_)) => continue,
        }
    }
}

/// Reads events of `channel` until seq `last`, adding each seq to `seqs` in arrival order;
/// returns the channel's epoch.
async fn read_until(ws: &mut Socket, channel: &str, last: u64, seqs: &mut Vec<u64>) -> Value {
    let mut epoch = Value::Null;
    while seqs.last() != Some(&last) {
        let frame = next_frame(ws).await.unwrap_or_else(|code| panic!("socket ended ({code:?}) at {seqs:?}"));
        if frame["channel"] == channel {
            seqs.push(frame["seq"].as_u64().unwrap());
            epoch = frame["epoch"].clone();
        }
    }
    epoch
}

/// Exactly 1..=n, once each, in order.
fn assert_exactly_once(who: &str, seqs: &[u64], n: u64) {
    let expected: Vec<u64> = (1..=n).collect();
    assert_eq!(seqs, expected, "{who}: lost, repeated or out-of-order events");
}

/// One personal event for every user.
fn personal_events(users: usize, round: u64) -> Vec<Value> {
    (0..users).map(|i| json!({"channels": [format!("user:u{i}")], "type": "tick", "data": round})).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_every_client_drops_at_once_and_resumes_exactly() {
    const CLIENTS: usize = 2000;
    const ROUNDS: u64 = 10;
    let server = Arc::new(Server::start(manifest()).await);
    let baseline = server.rss_mib();
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (server, barrier) = (server.clone(), barrier.clone());
        clients.push(tokio::spawn(async move {
            let user = format!("u{i}");
            let channel = format!("user:{user}");
            let mut ws = server.open(&user, &[], "").await;
            let mut seqs = Vec::new();
            barrier.wait().await; // everyone connected
            let epoch = read_until(&mut ws, &channel, ROUNDS, &mut seqs).await;
            drop(ws); // the storm: no close frame, the socket just goes
            barrier.wait().await; // everyone gone
            barrier.wait().await; // events published while away
            let mut ws = server.open(&user, &[], "&resume=1").await;
            let resume = json!({"type": "resume", "data": {"positions": {&channel: {"epoch": epoch, "seq": ROUNDS}}}});
            ws.send(Message::text(resume.to_string())).await.unwrap();
            read_until(&mut ws, &channel, 3 * ROUNDS, &mut seqs).await;
            assert_exactly_once(&user, &seqs, 3 * ROUNDS);
            ws.close(None).await.ok();
        }));
    }
    let meet =
        || async { tokio::time::timeout(3 * WAIT, barrier.wait()).await.expect("every client reached the step") };
    meet().await;
    for round in 1..=ROUNDS {
        server.publish_batch(personal_events(CLIENTS, round)).await;
    }
    meet().await;
    let peak = server.rss_mib();
    for round in ROUNDS + 1..=2 * ROUNDS {
        server.publish_batch(personal_events(CLIENTS, round)).await;
    }
    meet().await;
    // More events while the storm of reconnects and replays runs.
    for round in 2 * ROUNDS + 1..=3 * ROUNDS {
        server.publish_batch(personal_events(CLIENTS, round)).await;
    }
    for client in clients {
        tokio::time::timeout(3 * WAIT, client).await.expect("every client done in time").unwrap();
    }
    println!(
        "reconnect storm: {CLIENTS} clients dropped at once and resumed; each got seq 1..={} exactly once, in order",
        3 * ROUNDS
    );
    assert_no_ghosts(&server, CLIENTS).await;
    server.assert_memory_settles("reconnect storm", peak.max(baseline)).await;
}

/// Once every client left, presence shows each user offline within the grace (1 s) plus
/// the bound.
async fn assert_no_ghosts(server: &Server, users: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut online = Vec::new();
        for chunk in (0..users).collect::<Vec<_>>().chunks(500) {
            let names: Vec<String> = chunk.iter().map(|i| format!("u{i}")).collect();
            let presence = server.get(&format!("/presence?users={}", names.join(","))).await;
            let statuses = presence["presence"].as_object().unwrap().clone();
            online.extend(statuses.into_iter().filter(|(_, p)| p["status"] != "offline").map(|(u, _)| u));
        }
        if online.is_empty() {
            println!("presence: all {users} users offline once their clients left (no ghosts)");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "ghosts in presence: {online:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_cut_off_while_fast_ones_get_everything() {
    const FAST: usize = 20;
    const SLOW: usize = 10;
    const EVENTS: u64 = 1000;
    let mut small_queues = manifest();
    small_queues["limits"]["outbox_max_bytes"] = json!(262_144);
    let server = Server::start(small_queues).await;
    let mut fast = Vec::new();
    for i in 0..FAST {
        fast.push(server.open(&format!("fast{i}"), &["mix"], "").await);
    }
    let mut slow = Vec::new();
    for i in 0..SLOW {
        slow.push(server.open_slow(&format!("slow{i}"), &["mix"]).await);
    }
    let readers: Vec<_> = fast
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                read_until(&mut ws, "group:mix", EVENTS, &mut seqs).await;
                assert_exactly_once(&format!("fast{i}"), &seqs, EVENTS);
                ws
            })
        })
        .collect();
    // 1,000 events of 8 kB (8 MB per subscriber, past what a slow one's sockets and its
    // 256 kB queue hold), published 10 at a time: a burst larger than the queue would cut off even
    // a reader that keeps up, since the bound is on bytes queued at once.
    let chunk = "x".repeat(8_000);
    for first in (0..EVENTS).step_by(10) {
        let events = (first..first + 10)
            .map(|n| json!({"channels": ["group:mix"], "type": "bulk", "data": {"n": n, "pad": chunk}}))
            .collect();
        server.publish_batch(events).await;
    }
    let mut fast = Vec::new();
    for reader in readers {
        fast.push(tokio::time::timeout(3 * WAIT, reader).await.expect("fast readers finish").unwrap());
    }
    // The slow ones read only now, all at once: what their sockets held, then the close.
    let closes: Vec<_> = slow
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut frames = 0;
                loop {
                    match next_frame(&mut ws).await {
                        Ok(_) => frames += 1,
                        Err(code) => return (frames, code),
                    }
                }
            })
        })
        .collect();
    for (i, close) in closes.into_iter().enumerate() {
        let (frames, code) = tokio::time::timeout(WAIT, close).await.expect("slow clients end in time").unwrap();
        assert_eq!(code, Some(4008), "slow{i} is closed as a slow consumer after {frames} events");
        assert!(frames < EVENTS as usize, "slow{i} was cut off ({frames} events)");
    }
    let overflows = server.metric("switchboard_queue_overflows_total").await;
    assert_eq!(overflows, SLOW as f64, "each slow consumer counted once");
    for ws in &mut fast {
        ws.send(Message::Ping(Vec::new().into())).await.expect("fast clients stay connected");
    }
    println!("slow consumers: {SLOW} closed with 4008 (counted in /metrics); {FAST} fast clients got all {EVENTS} events exactly once, in order");
    let peak = server.rss_mib();
    drop(fast);
    server.assert_memory_settles("slow consumers", peak).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_fails_calls_on_time_and_holds_up_nothing_else() {
    const ASKERS: usize = 100;
    const EVENTS: u64 = 50;
    // A backend that accepts connections and never answers.
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_url = format!("http://{}/hook", backend.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = backend.accept().await {
            held.push(socket);
        }
    });
    let mut hanging = manifest();
    hanging["websockets"]["realtime"]["handler_url"] = json!(backend_url);
    hanging["websockets"]["realtime"]["handler_timeout"] = json!("1s");
    let server = Arc::new(Server::start(hanging).await);
    let mut watcher = server.open("watcher", &["watch"], "").await;
    let askers: Vec<_> = (0..ASKERS)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut ws = server.open(&format!("asker{i}"), &[], "").await;
                ws.send(Message::text(json!({"type": "ask", "ref": i, "data": {}}).to_string())).await.unwrap();
                let answer = next_frame(&mut ws).await.unwrap();
                assert_eq!(answer["data"]["code"], "handler_failed", "{answer}");
                // Past the endpoint's concurrency a call waits for a slot up to the same
                // timeout: on a busy machine that wait may end first, and says so.
                let message = answer["data"]["message"].as_str().unwrap();
                let called = message.contains("did not answer");
                assert!(called || message.contains("waiting for the app backend"), "{answer}");
                called
            })
        })
        .collect();
    // Live traffic flows while every handler call hangs.
    let events = (0..EVENTS).map(|n| json!({"channels": ["group:watch"], "type": "tick", "data": n})).collect();
    server.publish_batch(events).await;
    let mut seqs = Vec::new();
    read_until(&mut watcher, "group:watch", EVENTS, &mut seqs).await;
    assert_exactly_once("watcher", &seqs, EVENTS);
    let mut called = 0;
    for asker in askers {
        let reached =
            tokio::time::timeout(WAIT, asker).await.expect("every call fails within its timeout and slot wait");
        called += usize::from(reached.unwrap());
    }
    // A call that never got a slot never reached the backend, so only the others are timed.
    assert!(called > 0, "some calls reached the backend");
    let calls = server.metric("switchboard_handler_duration_seconds_count").await;
    assert_eq!(calls, called as f64, "every call that reached the backend is timed");
    println!("hanging backend: {ASKERS} calls failed with handler_failed after the 1 s timeout; a watcher got all {EVENTS} events meanwhile");
    let peak = server.rss_mib();
    held.abort();
    server.assert_memory_settles("hanging backend", peak).await;
}
