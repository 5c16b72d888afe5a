//! Three nodes as real processes on one Redis (or NATS) and one PostgreSQL. One is killed with
//! SIGKILL (or drained with SIGTERM) in the middle of a steady publish stream: its clients
//! resume on the others, and a checker proves that every client got every event exactly
//! once, in order. Presence converges: the lost node's user who did not come back goes
//! offline, announced once, and the users who moved stay online.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use switchboard_auth::{mint, Algorithm};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod common;

const SECRET: &str = "failover-secret";
const KEY: &str = "sk_failover";
/// Events in the stream, and after which one the node dies.
const EVENTS: u64 = 200;
const KILL_AFTER: u64 = 60;
/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(20);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Node {
    child: Child,
    base: String,
}

fn manifest() -> Value {
    json!({
        "slug": "fo",
        "auth_policy": {"jwt": {"secret_file": "secret.txt"}},
        "api_key_file": "key.txt",
        "websockets": {"realtime": {"path": "/ws"}},
        "presence": {"offline_grace": "1s"}
    })
}

/// How the node leaves.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// SIGKILL: its sockets just break.
    Kill,
    /// SIGTERM: /readyz fails, then (after a 250 ms drain grace) its sockets close with 1001.
    /// The grace must end well inside the rest of the stream (140 publishes, 5 ms apart at
    /// least), or the stream could finish before the node closes its sockets.
    Drain,
}

/// Starts `switchboard serve` as node `name`; waits for its "listening" log line.
async fn start_node(dir: &std::path::Path, name: &str, broker: &str, store: &str) -> Node {
    let args =
        ["--manifest", "fo.json", "--node-id", name, "--broker", broker, "--store", store, "--drain-grace", "250ms"];
    let (child, base) = common::serve(dir, &args, "info").await;
    Node { child, base }
}

fn token(user: &str) -> String {
    let now = switchboard_hub::unix_ms() / 1000;
    let claims = json!({"sub": user, "exp": now + 600, "groups": ["stream"]});
    let claims: Map<String, Value> = claims.as_object().unwrap().clone();
    mint(Algorithm::HS256, SECRET.as_bytes(), &claims).unwrap()
}

async fn open(base: &str, user: &str, query: &str) -> Option<Socket> {
    let url = format!("{}/ws?token={}{query}", base.replacen("http", "ws", 1), token(user));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let connected = next_frame(&mut ws).await.ok()?;
    (connected["type"] == "connected").then_some(ws)
}

/// The next JSON frame; when the socket ends, its close code (`None` when it just broke).
async fn next_frame(ws: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame within the bound") {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).map_err(|_| None),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            None | Some(Err(_)) => return Err(None),
            Some(Ok(_)) => continue,
        }
    }
}

/// What one stream client saw: every event's (seq, data), and the close code of each socket
/// it lost (`None`: it broke); and its socket, kept open so that its user stays online.
struct Seen {
    events: Vec<(u64, u64)>,
    closes: Vec<Option<u16>>,
    socket: Option<Socket>,
}

/// A client of `group:stream` that starts on node `first` and, when its node dies, resumes
/// on the next one that answers, until it has the stream's last event.
async fn stream_client(bases: Vec<String>, user: String, first: usize) -> Seen {
    let mut seen = Seen { events: Vec::new(), closes: Vec::new(), socket: None };
    let mut position: Option<Value> = None;
    let mut node = first;
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while seen.events.last().map(|e| e.0) != Some(EVENTS) {
        assert!(tokio::time::Instant::now() < deadline, "{user} never got the whole stream");
        let query = if position.is_some() { "&resume=1" } else { "" };
        let Some(mut ws) = open(&bases[node], &user, query).await else {
            node = (node + 1) % bases.len();
            continue;
        };
        if let Some(position) = &position {
            let resume = json!({"type": "resume", "data": {"positions": {"group:stream": position}}});
            ws.send(Message::Text(resume.to_string().into())).await.unwrap();
        }
        loop {
            let frame = match next_frame(&mut ws).await {
                Ok(frame) => frame,
                Err(code) => {
                    seen.closes.push(code);
                    break;
                }
            };
            if frame["type"] == "resumed" {
                assert_eq!(frame["data"]["recovered"], true, "{user}: {frame}");
            }
            if frame["channel"] == "group:stream" && frame["type"] == "tick" {
                let seq = frame["seq"].as_u64().unwrap();
                seen.events.push((seq, frame["data"].as_u64().unwrap()));
                position = Some(json!({"epoch": frame["epoch"], "seq": seq}));
                if seq == EVENTS {
                    seen.socket = Some(ws);
                    return seen;
                }
            }
        }
    }
    seen
}

/// Kills the node, or sends it SIGTERM and checks that /readyz fails before it closes.
async fn leave(node: &mut Node, ending: Ending, http: &reqwest::Client) {
    if ending == Ending::Kill {
        return node.child.start_kill().unwrap();
    }
    let pid = node.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = http.get(format!("{}/readyz", node.base)).send().await.unwrap().status();
        if status == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz kept passing after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn presence(http: &reqwest::Client, base: &str, users: &str) -> Value {
    let url = format!("{base}/api/v1/apps/fo/presence?users={users}");
    http.get(url).bearer_auth(KEY).send().await.unwrap().json::<Value>().await.unwrap()["presence"].clone()
}

#[tokio::test]
async fn killing_a_node_loses_and_repeats_nothing_and_presence_converges() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    lose_a_node_mid_stream(Ending::Kill, &redis).await;
}

#[tokio::test]
async fn draining_a_node_fails_readyz_then_its_clients_resume_elsewhere_with_nothing_lost() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    lose_a_node_mid_stream(Ending::Drain, &redis).await;
}

#[tokio::test]
async fn killing_a_node_of_a_nats_cluster_loses_and_repeats_nothing() {
    let Some(nats) = switchboard_broker::testing::nats_url() else { return };
    lose_a_node_mid_stream(Ending::Kill, &nats).await;
}

/// The scenario on a cluster whose broker server is at `server` (Redis or NATS).
async fn lose_a_node_mid_stream(ending: Ending, server: &str) {
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let broker = format!("{server}?channel_prefix=failover{:08x}", rand::random::<u32>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(dir.path().join("key.txt"), KEY).unwrap();
    std::fs::write(dir.path().join("fo.json"), manifest().to_string()).unwrap();
    let mut nodes = Vec::new();
    for name in ["n0", "n1", "n2"] {
        nodes.push(start_node(dir.path(), name, &broker, &store).await);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let http = reqwest::Client::new();

    // The watcher and the user who will not come back, then two stream clients per node.
    let mut watcher = open(&bases[0], "watcher", "").await.unwrap();
    let _ghost = open(&bases[2], "ghost", "").await.unwrap();
    let clients: Vec<_> = (0..6).map(|i| tokio::spawn(stream_client(bases.clone(), format!("c{i}"), i % 3))).collect();
    // Every node knows the others (heartbeats) before the stream starts.
    for base in &bases {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let url = format!("{base}/api/v1/apps/fo/connections");
            let counts: Value = http.get(url).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
            if counts["nodes"].as_array().map_or(0, Vec::len) == 3 && counts["total"] == 8 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the cluster did not form: {counts}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A steady stream through n0 and n1; n2 dies part way through.
    for n in 0..EVENTS {
        if n == KILL_AFTER {
            leave(&mut nodes[2], ending, &http).await;
        }
        let body = json!({"channels": ["group:stream"], "type": "tick", "data": n});
        let url = format!("{}/api/v1/apps/fo/publish", bases[(n % 2) as usize]);
        let response = http.post(url).bearer_auth(KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "publish {n}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The checker: every client has 1..=EVENTS, each once, in order, with the data sent.
    let mut sockets = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let mut seen = tokio::time::timeout(3 * WAIT, client).await.expect("the client finished").unwrap();
        sockets.push(seen.socket.take());
        let want: Vec<(u64, u64)> = (1..=EVENTS).map(|seq| (seq, seq - 1)).collect();
        assert_eq!(seen.events, want, "c{i}: nothing lost, nothing twice, in order");
        let closes = match (i % 3, ending) {
            (2, Ending::Kill) => vec![None],
            (2, Ending::Drain) => vec![Some(1001)],
            _ => vec![],
        };
        assert_eq!(seen.closes, closes, "c{i}: only the lost node's clients moved");
    }

    // Presence: the ghost goes offline, once; the clients that moved are still online.
    let offline = loop {
        let frame = next_frame(&mut watcher).await.expect("the watcher stays connected");
        if frame["type"] == "presence:offline" {
            break frame;
        }
    };
    assert_eq!(offline["data"]["userKey"], "ghost", "{offline}");
    // Every survivor converges within the bound: n2 lost after 3 s of silence, on the next
    // heartbeat tick.
    for base in &bases[..2] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let seen = presence(&http, base, "ghost,c2,c5,c0").await;
            let statuses: Vec<&Value> = ["ghost", "c2", "c5", "c0"].iter().map(|u| &seen[*u]["status"]).collect();
            if statuses == ["offline", "online", "online", "online"] {
                break;
            }
            assert!(statuses[1..] == ["online", "online", "online"], "{base}: moved users stay online: {seen}");
            assert!(tokio::time::Instant::now() < deadline, "{base} did not converge: {seen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both survivors have dropped n2; a second announcement (from a node that wrongly thought
    // itself the announcer) would follow within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ping = json!({"type": "ping", "ref": "after"}).to_string();
    watcher.send(Message::Text(ping.into())).await.unwrap();
    loop {
        let frame = next_frame(&mut watcher).await.expect("the watcher stays connected");
        assert_ne!(frame["type"], "presence:offline", "announced once: {frame}");
        if frame["type"] == "pong" {
            break;
        }
    }
}

/// A node frozen (SIGSTOP) for longer than the heartbeat timeout, then continued: the others
/// take it for lost meanwhile (they cannot tell it from a dead one) and announce its users
/// offline; when it is back, they announce them online again, so no client keeps a stale
/// offline. And on waking it must not take the others for lost: their beats are queued
/// unread, not missing (taking them for lost made it announce their users offline).
#[tokio::test]
async fn a_frozen_node_is_back_with_its_users_and_does_not_take_the_others_for_lost() {
    let Some(redis) = switchboard_broker::testing::redis_url() else { return };
    let Some(store) = switchboard_store::testing::postgres_database().await else { return };
    let broker = format!("{redis}?channel_prefix=frozen{:08x}", rand::random::<u32>());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(dir.path().join("key.txt"), KEY).unwrap();
    std::fs::write(dir.path().join("fo.json"), manifest().to_string()).unwrap();
    let frozen = start_node(dir.path(), "n0", &broker, &store).await;
    let other = start_node(dir.path(), "n1", &broker, &store).await;
    let mut watcher = open(&frozen.base, "watcher", "").await.unwrap();
    let mut far = open(&other.base, "far", "").await.unwrap();
    let http = reqwest::Client::new();
    let online = |base: &str, user: &str| {
        let (http, base, user) = (http.clone(), base.to_owned(), user.to_owned());
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while presence(&http, &base, &user).await[&user]["status"] != "online" {
                assert!(tokio::time::Instant::now() < deadline, "{base} never saw {user} online");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    online(&frozen.base, "far").await;
    online(&other.base, "watcher").await;
    let pid = frozen.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    // Past NODE_TIMEOUT (3 s) and a heartbeat tick: on waking, n1's last beat is 4.5 s old.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    online(&other.base, "watcher").await;
    // Two heartbeat ticks on n0 after waking, then a marker through each socket.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for (ws, user) in [(&mut watcher, "far"), (&mut far, "watcher")] {
        let ping = json!({"type": "ping", "ref": "after"}).to_string();
        ws.send(Message::Text(ping.into())).await.unwrap();
        let mut last = None;
        loop {
            let frame = next_frame(ws).await.expect("the client stays connected");
            if frame["type"] == "pong" {
                break;
            }
            if frame["data"]["userKey"] == user && frame["type"].as_str().is_some_and(|t| t.starts_with("presence:")) {
                last = Some(frame["type"].clone());
            }
        }
        assert_ne!(last, Some(json!("presence:offline")), "the last word on {user} is that it is online");
    }
    assert_eq!(presence(&http, &frozen.base, "far").await["far"]["status"], "online");
}
