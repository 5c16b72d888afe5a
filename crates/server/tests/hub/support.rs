//! A real server on 127.0.0.1:0 and clients that speak to it over real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use switchboard::{Server, Settings};
use switchboard_auth::{mint, Algorithm};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-0123456789";
pub const API_KEY: &str = "sk_test_app1";
/// The key of a second app, `key2.txt`, for isolation tests.
pub const API_KEY_2: &str = "sk_test_app2";
/// Bounded wait for anything a test expects to happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// The manifest most tests use: auth required on /ws, anonymous on /open.
pub fn manifest() -> Value {
    json!({
        "slug": "app1",
        "auth_policy": {"jwt": {"secret_file": "secret.txt", "leeway": 0}},
        "api_key_file": "key.txt",
        "websockets": {
            "realtime": {"path": "/ws", "ping_interval": 30},
            "open": {"path": "/open", "auth": {"required": false}},
            "legacy": {"path": "/socket.io/", "protocol": "socket.io"}
        },
        "channels": {
            "room": {"subscribe": "authenticated"},
            "stream": {"subscribe": "claim"},
            "vip": {"subscribe": "server"},
            "news": {"subscribe": "public"}
        },
        "limits": {"auth_timeout": "300ms", "max_message_bytes": 4096},
        // Presence signals arrive whenever a user of a shared group connects; the tests of
        // other areas read exact frame sequences, so only the chat tests turn it on.
        "features": {"presence": false}
    })
}

/// The manifest for chat: short typing timeout, a small message limit, presence off (its
/// signals would interleave with the frames a chat test reads).
pub fn chat_manifest() -> Value {
    let mut m = manifest();
    m["chat"] = json!({"typing_timeout": "300ms", "max_message_chars": 50});
    m
}

/// The manifest with presence on and a short (1 s) grace period for going offline.
pub fn presence_manifest() -> Value {
    let mut m = chat_manifest();
    m["features"] = json!({});
    m["presence"] = json!({"offline_grace": "1s"});
    m
}

/// A second app, `app2`, with its own path (`/ws2`) and key (`key2.txt`).
pub fn second_app() -> Value {
    let mut other = manifest();
    other["slug"] = json!("app2");
    other["websockets"] = json!({"realtime": {"path": "/ws2"}});
    other["api_key_file"] = json!("key2.txt");
    other
}

/// The store a test server runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines one `#[tokio::test]` per backend for each `async fn name(Backend)` named.
/// The PostgreSQL ones skip (pass with a note) when no server is configured; scripts/test
/// configures one and makes its absence a failure.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name($crate::support::Backend::Postgres).await })*
        }
    };
}

pub struct TestServer {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    http: reqwest::Client,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(vec![manifest()], |_| {}).await
    }

    /// Starts a server for `manifests`, written to files beside `secret.txt`, `key.txt` and
    /// `key2.txt`, with `tweak` applied to the settings.
    pub async fn start_with(manifests: Vec<Value>, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        std::fs::write(dir.path().join("key.txt"), API_KEY).unwrap();
        std::fs::write(dir.path().join("key2.txt"), API_KEY_2).unwrap();
        let mut files = Vec::new();
        for (i, manifest) in manifests.iter().enumerate() {
            let path = dir.path().join(format!("app{i}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(manifest).unwrap()).unwrap();
            files.push(path.display().to_string());
        }
        let mut settings = Settings::for_manifests(files);
        tweak(&mut settings);
        let server = Server::build(settings).await.expect("server builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self { addr, _dir: dir, stop: Some(stop), task: Some(task), http: reqwest::Client::new() }
    }

    /// A server for `manifests` on `backend`; `None` when PostgreSQL is not configured.
    pub async fn start_on(backend: Backend, manifests: Vec<Value>) -> Option<Self> {
        let store = match backend {
            Backend::Sqlite => "sqlite::memory:".to_owned(),
            Backend::Postgres => switchboard_store::testing::postgres_database().await?,
        };
        Some(Self::start_with(manifests, move |s| s.store = store).await)
    }

    /// Begins shutdown; `finish` waits for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn finish(&mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("shutdown within bound").unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token(&self, user: &str, extra: Value) -> String {
        let now = switchboard_hub::unix_ms() / 1000;
        let mut claims = json!({"sub": user, "exp": now + 600});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            claims[k] = v;
        }
        let claims: Map<String, Value> = claims.as_object().unwrap().clone();
        mint(Algorithm::HS256, SECRET.as_bytes(), &claims).unwrap()
    }

    /// Calls the server API of `app` with `key`.
    pub async fn api(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The value of the `/metrics` series `name` whose labels include every one of `labels`
    /// (`app="app1"`), once `until` holds for it (bounded by [`WAIT`]). Counters are bumped
    /// just after the work they count, so a test that saw the work may poll a moment.
    pub async fn metric_until(&self, name: &str, labels: &[&str], until: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
            let value = metric(&text, name, labels);
            match value {
                Some(v) if until(v) => return v,
                _ if tokio::time::Instant::now() >= deadline => panic!("{name}{labels:?} is {value:?}:\n{text}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    pub async fn publish(&self, body: Value) -> Value {
        let (status, answer) = self.api("POST", "/api/v1/apps/app1/publish", Some(API_KEY), Some(body)).await;
        assert_eq!(status, 200, "publish failed: {answer}");
        answer
    }

    /// Publishes a batch of events; returns the status.
    pub async fn publish_batch(&self, events: Vec<Value>) -> u16 {
        let body = json!({ "events": events });
        self.api("POST", "/api/v1/apps/app1/publish/batch", Some(API_KEY), Some(body)).await.0
    }

    /// Connects and reads the `connected` frame.
    pub async fn connect(&self, user: &str) -> Client {
        self.connect_token(&self.token(user, json!({}))).await
    }

    pub async fn connect_token(&self, token: &str) -> Client {
        self.connect_query(token, "").await
    }

    /// Connects with extra query parameters (`device=phone&resume=1`) and reads `connected`.
    pub async fn connect_query(&self, token: &str, query: &str) -> Client {
        let mut client = self.raw(&format!("/ws?token={token}&{query}"), &[]).await;
        let connected = client.next_json().await;
        assert_eq!(connected["type"], "connected", "{connected}");
        client.connected = connected["data"].clone();
        client
    }

    /// Opens a socket with extra headers; reads nothing.
    pub async fn raw(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Client {
        let mut request = format!("ws://{}{path_and_query}", self.addr).into_client_request().unwrap();
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
            request.headers_mut().insert(name, HeaderValue::from_str(value).unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
        Client { ws, connected: Value::Null }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub connected: Value,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next JSON frame, skipping pings; panics on close or timeout.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame within bound");
            match message {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a JSON frame, got {other:?}"),
            }
        }
    }

    /// Sends a request with `ref` and returns the answer (reply or error).
    pub async fn request(&mut self, kind: &str, data: Value) -> Value {
        let reference = format!("r-{kind}");
        self.send(json!({"type": kind, "data": data, "ref": reference})).await;
        let answer = self.next_json().await;
        assert_eq!(answer["ref"], reference, "answer carries the ref: {answer}");
        answer
    }

    /// Reads until the server closes; returns the close frame. Text frames before it are returned too.
    pub async fn closed(&mut self) -> (Vec<Value>, Closed) {
        let mut frames = Vec::new();
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next()).await.expect("close within bound");
            match message {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frames, Closed { code: u16::from(frame.code), reason: frame.reason.to_string() })
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return (frames, Closed { code: 1006, reason: String::new() })
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next frame, which must be of type `kind`; returns its `data` (the whole frame for
    /// replies and errors, which carry `ref`).
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next_json().await;
        assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
        if frame.get("ref").is_some() {
            frame
        } else {
            frame["data"].clone()
        }
    }

    /// Proves the connection still works: ping answered with pong.
    pub async fn assert_alive(&mut self) {
        let pong = self.request("ping", json!({})).await;
        assert_eq!(pong["type"], "pong");
    }
}

/// The value of the series `name` in a Prometheus text exposition whose labels include
/// every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{')?;
        let found =
            series_name == name && labels.iter().all(|l| rest.split(',').any(|p| p.trim_end_matches('}') == *l));
        found.then(|| value.parse().ok()).flatten()
    })
}
