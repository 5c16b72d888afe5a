//! Calls to the app backend: message handlers, the connect hook and the subscribe proxy,
//! against a real backend process (tests/handlers/backend.py) that checks every signature;
//! and, against backends written here, what each call carries (the signature over timestamp
//! and body) and that a redirect is never followed.

use std::process::Stdio;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{manifest, TestServer, API_KEY, WAIT};

struct Backend {
    _child: tokio::process::Child,
    url: String,
    /// What the backend prints: `hook <type> <user>` as each handler call arrives.
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Backend {
    /// Waits until the backend has received `line`.
    async fn received(&mut self, line: &str) {
        loop {
            let next = tokio::time::timeout(WAIT, self.lines.next_line()).await.expect("the backend logs in time");
            if next.unwrap().expect("the backend runs") == line {
                return;
            }
        }
    }
}

async fn backend() -> Backend {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/handlers/backend.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .env("SWITCHBOARD_KEY", API_KEY)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the test backend");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap().expect("the backend's port");
    Backend { _child: child, url: format!("http://127.0.0.1:{port}"), lines }
}

/// The test manifest with the backend wired in: a handler on /ws (500 ms, two at a time), a
/// connect hook on /hooked, a proxy namespace `docs`, and a handler that is down on /down.
fn wired(backend: &Backend) -> Value {
    let mut m = manifest();
    let ws = &mut m["websockets"];
    ws["realtime"]["handler_url"] = json!(format!("{}/hook", backend.url));
    ws["realtime"]["handler_timeout"] = json!("500ms");
    ws["realtime"]["handler_concurrency"] = json!(1);
    ws["hooked"] = json!({"path": "/hooked", "connect_url": format!("{}/connect", backend.url)});
    ws["down"] = json!({"path": "/down", "handler_url": "http://127.0.0.1:1/hook"});
    m["channels"]["docs"] = json!({"subscribe": "proxy", "proxy_url": format!("{}/proxy", backend.url)});
    m
}

fn error_of(frame: &Value) -> (String, String) {
    assert_eq!(frame["type"], "error", "{frame}");
    let text = |field: &str| frame["data"][field].as_str().unwrap().to_owned();
    (text("code"), text("message"))
}

#[tokio::test]
async fn the_backend_replies_publishes_and_refuses_through_the_connection() {
    let backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let mut ann = server.connect("ann").await;
    let echo = ann.request("echo", json!({"x": 1})).await;
    assert_eq!((echo["type"].as_str(), &echo["data"]), (Some("reply"), &json!({"echo": {"x": 1}, "user": "ann"})));

    assert_eq!(ann.request("subscribe", json!({"channel": "room:lobby"})).await["type"], "reply");
    let mut bob = server.connect("bob").await;
    bob.request("subscribe", json!({"channel": "room:lobby"})).await;
    ann.send(json!({"type": "announce", "data": "hello lobby", "ref": 2})).await;
    assert_eq!(ann.expect("announced").await, "hello lobby", "published before the reply");
    assert_eq!(ann.expect("reply").await["data"], json!({"published": 1}));
    assert_eq!(bob.expect("announced").await, "hello lobby");

    let refused = ann.request("refuse", json!({})).await;
    assert_eq!(error_of(&refused), ("not_allowed".into(), "no way".into()), "the backend's own code and message");
    ann.assert_alive().await;
}

#[tokio::test]
async fn a_message_without_ref_still_gets_the_backends_reply_without_ref() {
    let backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let mut ann = server.connect("ann").await;
    ann.send(json!({"type": "echo", "data": {"x": 1}})).await;
    let reply = ann.next_json().await;
    assert_eq!(reply, json!({"type": "reply", "data": {"echo": {"x": 1}, "user": "ann"}}), "no `ref` to copy");
    // The backend's refusal arrives the same way.
    ann.send(json!({"type": "refuse"})).await;
    let refused = ann.next_json().await;
    assert_eq!((refused.get("ref"), error_of(&refused).0.as_str()), (None, "not_allowed"));
    ann.assert_alive().await;
}

#[tokio::test]
async fn a_slow_failing_garbled_or_absent_backend_is_handler_failed_and_the_connection_stays() {
    let backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let mut ann = server.connect("ann").await;
    for (kind, says) in [("slow", "within 0.5 s"), ("garbage", "not a JSON object"), ("boom", "HTTP 500")] {
        let (code, message) = error_of(&ann.request(kind, json!({})).await);
        assert_eq!(code, "handler_failed", "{kind}");
        assert!(message.contains(says), "{kind}: {message}");
    }
    ann.assert_alive().await;
    let token = server.token("ann", json!({}));
    let mut down = server.raw(&format!("/down?token={token}"), &[]).await;
    down.expect("connected").await;
    let (code, message) = error_of(&down.request("anything", json!({})).await);
    assert_eq!((code.as_str(), message.as_str()), ("handler_failed", "the app backend could not be reached"));
    down.assert_alive().await;
    let timed = ["app=\"app1\"", "le=\"+Inf\""];
    let calls = server.metric_until("switchboard_handler_duration_seconds_bucket", &timed, |n| n >= 4.0).await;
    assert!(calls >= 4.0, "every call is timed, failed ones included");
}

#[tokio::test]
async fn the_concurrency_limit_makes_extra_calls_wait_for_a_slot() {
    let mut backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let (mut a, mut b) = (server.connect("a").await, server.connect("b").await);
    // One slot: a's slow call holds it until a's 500 ms timeout; b's call waits for it.
    let a_sent = tokio::time::Instant::now();
    a.send(json!({"type": "slow", "ref": 1})).await;
    backend.received("hook slow a").await;
    b.send(json!({"type": "echo", "data": 2, "ref": 2})).await;
    assert_eq!(b.expect("reply").await["data"]["echo"], 2);
    assert!(a_sent.elapsed() >= std::time::Duration::from_millis(500), "b ran only once a's slot came free");
    let (_, message) = error_of(&a.expect("error").await);
    assert!(message.contains("did not answer"), "{message}");
}

#[tokio::test]
async fn the_connect_hook_refuses_or_adds_channels_and_data() {
    let backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let token = server.token("mallory", json!({}));
    let mut mallory = server.raw(&format!("/hooked?token={token}"), &[]).await;
    let (_, closed) = mallory.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (4403, "mallory is banned"));

    let token = server.token("ann", json!({}));
    let mut ann = server.raw(&format!("/hooked?token={token}"), &[]).await;
    let connected = ann.expect("connected").await;
    assert_eq!(connected["data"], json!({"plan": "pro"}));
    assert!(connected["channels"].as_array().unwrap().contains(&json!("room:vip-ann")), "{connected}");
    server.publish(json!({"channels": ["room:vip-ann"], "type": "vip", "data": 1})).await;
    assert_eq!(ann.expect("vip").await, 1);
}

#[tokio::test]
async fn the_subscribe_proxy_asks_the_backend_and_remembers_its_answer() {
    let backend = backend().await;
    let server = TestServer::start_with(vec![wired(&backend)], |_| {}).await;
    let mut ann = server.connect("ann").await;
    assert_eq!(ann.request("subscribe", json!({"channel": "docs:ann"})).await["type"], "reply");
    let (code, message) = error_of(&ann.request("subscribe", json!({"channel": "docs:bob"})).await);
    assert_eq!(code, "forbidden");
    assert!(message.contains("app backend"), "{message}");
    drop(backend); // the answer for docs:ann is cached for 30 s
    let mut again = server.connect("ann").await;
    assert_eq!(again.request("subscribe", json!({"channel": "docs:ann"})).await["type"], "reply");
}

/// What a backend written in the test received: each call's headers and body.
type Calls = tokio::sync::mpsc::UnboundedReceiver<(HeaderMap, axum::body::Bytes)>;

/// A backend on 127.0.0.1:0 that records each call to any path and answers it with
/// `answer()`; its base URL and what it received.
async fn recording_backend(answer: impl Fn() -> Response + Clone + Send + Sync + 'static) -> (String, Calls) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let record = move |headers: HeaderMap, body: axum::body::Bytes| {
        let _ = tx.send((headers, body));
        let answer = answer.clone();
        async move { answer() }
    };
    let router = axum::Router::new().fallback(record);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn a_redirect_from_the_backend_is_not_followed_with_the_signed_call() {
    // Elsewhere would answer, and let everyone in, if a call reached it.
    let (elsewhere, mut leaked) =
        recording_backend(|| axum::Json(json!({"reply": {"leaked": true}, "allow": true})).into_response()).await;
    let to = format!("{elsewhere}/hook");
    let (backend, mut asked) =
        recording_backend(move || (StatusCode::TEMPORARY_REDIRECT, [("location", to.clone())]).into_response()).await;
    let mut m = manifest();
    m["websockets"]["realtime"]["handler_url"] = json!(format!("{backend}/hook"));
    m["websockets"]["hooked"] = json!({"path": "/hooked", "connect_url": format!("{backend}/connect")});
    let server = TestServer::start_with(vec![m], |_| {}).await;
    let mut ann = server.connect("ann").await;
    let (code, message) = error_of(&ann.request("claim", json!({"task": 1})).await);
    assert_eq!(code, "handler_failed");
    assert!(message.contains("HTTP 307") && message.contains("redirect"), "{message}");
    let (headers, _) = asked.try_recv().expect("the backend was asked");
    assert!(headers.contains_key("x-switchboard-signature"), "the call it was asked was signed");
    ann.assert_alive().await;
    // The connect hook's call fails the same way: the connection is refused, to retry.
    let token = server.token("bob", json!({}));
    let (_, closed) = server.raw(&format!("/hooked?token={token}"), &[]).await.closed().await;
    assert_eq!(closed.code, 1011, "{closed:?}");
    assert!(asked.try_recv().is_ok(), "the backend was asked");
    // Each call failed once the 307 came back; had it been followed, elsewhere would have
    // answered before that.
    assert!(leaked.try_recv().is_err(), "a signed call never reaches the redirect's target");
}

#[tokio::test]
async fn the_signature_covers_the_timestamp_and_the_body() {
    let (backend, mut calls) = recording_backend(|| axum::Json(json!({"reply": {"ok": true}})).into_response()).await;
    let mut m = manifest();
    m["websockets"]["realtime"]["handler_url"] = json!(format!("{backend}/hook"));
    let server = TestServer::start_with(vec![m], |_| {}).await;
    let mut ann = server.connect("ann").await;
    assert_eq!(ann.request("claim", json!({"task": 1})).await["data"], json!({"ok": true}));
    let (headers, body) = calls.try_recv().expect("the backend was called");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (timestamp, signature) = (header("x-switchboard-timestamp"), header("x-switchboard-signature"));
    let now = switchboard_hub::unix_ms() / 1000;
    let signed_at: u64 = timestamp.parse().unwrap_or_else(|_| panic!("unix seconds: {timestamp:?}"));
    assert!(signed_at.abs_diff(now) <= 5, "signed just now: {signed_at} vs {now}");
    // An HMAC computed by another implementation (Python's) over "{timestamp}.{body}".
    let hmac = "import hashlib, hmac, sys; signed = sys.argv[2].encode() + b'.' + sys.stdin.buffer.read(); \
                print('sha256=' + hmac.new(sys.argv[1].encode(), signed, hashlib.sha256).hexdigest())";
    let mut python = tokio::process::Command::new("python3")
        .args(["-c", hmac, API_KEY, &timestamp])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = python.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &body).await.unwrap();
    drop(stdin);
    let expected = python.wait_with_output().await.unwrap();
    assert_eq!(signature, String::from_utf8(expected.stdout).unwrap().trim());
}
