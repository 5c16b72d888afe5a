//! The binary as a user runs it: --help, check, token, and the zero-config serve.

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const WAIT: Duration = Duration::from_secs(20);
const ADMIN_TOKEN: &str = "admin-token-never-logged-0123";

fn run(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(BIN).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn help_teaches() {
    let dir = tempfile::tempdir().unwrap();
    let top = String::from_utf8(run(&["--help"], dir.path()).stdout).unwrap();
    assert!(top.contains("switchboard serve") && top.contains("token") && top.contains("check"), "{top}");
    let serve = String::from_utf8(run(&["serve", "--help"], dir.path()).stdout).unwrap();
    for needle in ["--manifest", "--bind", "--store", "--broker", "--node-id", "--config", "SWITCHBOARD_BIND"] {
        assert!(serve.contains(needle), "serve --help lacks {needle}");
    }
    let token = String::from_utf8(run(&["token", "--help"], dir.path()).stdout).unwrap();
    assert!(token.contains("Example: switchboard token"), "{token}");
    for needle in ["--store", "--manifest", "--config", "--ttl"] {
        assert!(token.contains(needle), "token --help lacks {needle}: {token}");
    }
    for serve_only in ["--bind", "--broker", "--node-id", "--drain-", "--admin-token-file", "--log-format"] {
        assert!(!token.contains(serve_only), "token --help shows the serve flag {serve_only}: {token}");
    }
}

#[test]
fn check_lists_every_error_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\n  \"slug\": \"Bad Slug\",\n  \"websockets\": {\n    \"rt\": {\"path\": \"/ws\", \"ping_interval\": \"1.5s\", \"pth\": 1},\n    \"two\": {\"path\": \"no-slash\"}\n  },\n  \"limits\": {\"burst\": \"x\"}\n}";
    std::fs::write(dir.path().join("many.json"), text).unwrap();
    let out = run(&["check", "many.json"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for expected in [
        "many.json:2:11: `slug`",
        "many.json:4:44: `websockets.rt.ping_interval`: `1.5s`: fractions are not allowed; use 1500ms",
        "many.json:4:59: `websockets.rt.pth`: unknown field `pth`",
        "many.json:5:21: `websockets.two.path`",
        "many.json:7:23: `limits.burst`",
    ] {
        assert!(stderr.contains(expected), "lacks {expected:?}: {stderr}");
    }
    assert!(stderr.contains("5 errors"), "{stderr}");
}

#[tokio::test]
async fn serve_binds_before_it_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["serve", "--bind", &addr], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot listen on {addr} (choose another with --bind)")), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed start left files behind: {left:?}");
}

#[test]
fn token_elsewhere_creates_no_store_and_says_where_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["token", "--app", "demo", "--user", "bob"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(stderr.contains("no store at ./switchboard.db") && stderr.contains("--store"), "{stderr}");
    assert!(!dir.path().join("switchboard.db").exists(), "token created a store");
}

#[test]
fn check_accepts_good_manifests_and_points_at_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "s3cret").unwrap();
    let good =
        r#"{"slug": "good", "auth_policy": {"jwt": {"secret_file": "key"}}, "websockets": {"rt": {"path": "/ws"}}}"#;
    std::fs::write(dir.path().join("good.json"), good).unwrap();
    let out = run(&["check", "good.json"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok: good.json (app `good`): rt /ws (native)"), "{stdout}");
    assert!(stdout.contains("warning: no API key"), "{stdout}");

    std::fs::write(
        dir.path().join("bad.json"),
        "{\n  \"slug\": \"bad\",\n  \"websockets\": {\"rt\": {\"path\": 1}}\n}",
    )
    .unwrap();
    let out = run(&["check", "bad.json"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bad.json:3:") && stderr.contains("websockets.rt.path"), "{stderr}");

    let clash =
        r#"{"slug": "clash", "auth_policy": {"jwt": {"secret_file": "key"}}, "websockets": {"x": {"path": "/ws"}}}"#;
    std::fs::write(dir.path().join("clash.json"), clash).unwrap();
    let out = run(&["check", "good.json", "clash.json"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("good.json") && stderr.contains("clash.json"), "{stderr}");
}

/// What the zero-config banner tells a newcomer.
struct Banner {
    base: String,
    token: String,
    key: String,
}

async fn read_banner(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Banner {
    let (mut base, mut token, mut key) = (None, None, None);
    while base.is_none() || token.is_none() || key.is_none() {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap().expect("banner");
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Switchboard is serving the demo app on ") {
            base = Some(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("Dev token:") {
            token = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("API key:") {
            key = Some(rest.trim().to_owned());
        }
    }
    Banner { base: base.unwrap(), token: token.unwrap(), key: key.unwrap() }
}

#[tokio::test]
async fn zero_config_serve_prints_a_working_token_key_and_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("SWITCHBOARD_MANIFESTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = read_banner(&mut lines).await;
    assert!(dir.path().join("switchboard.db").exists(), "SQLite file in the working directory");

    let ws_url = format!("{}/ws?token={}", banner.base.replacen("http", "ws", 1), banner.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let connected = next_text(&mut ws).await;
    assert!(connected.contains("\"user_id\":\"alice\""), "{connected}");

    // The printed curl command's request, with the printed key.
    let http = reqwest::Client::new();
    let body = serde_json::json!({"channels": ["user:alice"], "type": "hello", "data": {"text": "hi"}});
    let url = format!("{}/api/v1/apps/demo/publish", banner.base);
    let status = http.post(&url).bearer_auth(&banner.key).json(&body).send().await.unwrap().status();
    assert_eq!(status, 200);
    assert!(next_text(&mut ws).await.contains("\"type\":\"hello\""));

    // `switchboard token` in the same directory mints tokens the running demo accepts.
    let minted = run(&["token", "--app", "demo", "--user", "bob", "--groups", "g1"], dir.path());
    let said = String::from_utf8_lossy(&minted.stderr);
    assert!(minted.status.success(), "{said}");
    assert!(said.contains("signed with the demo app's secret from sqlite://./switchboard.db"), "{said}");
    // Elsewhere, --store names the server's store.
    let store = format!("sqlite://{}", dir.path().join("switchboard.db").display());
    let elsewhere = tempfile::tempdir().unwrap();
    let args = ["token", "--app", "demo", "--user", "bob", "--groups", "g1", "--store", &store];
    let minted_elsewhere = run(&args, elsewhere.path());
    assert!(minted_elsewhere.status.success(), "{}", String::from_utf8_lossy(&minted_elsewhere.stderr));
    assert!(String::from_utf8_lossy(&minted.stdout).starts_with("eyJ"));
    let bob = String::from_utf8(minted_elsewhere.stdout).unwrap().trim().to_owned();
    let url = format!("{}/ws?token={bob}", banner.base.replacen("http", "ws", 1));
    let (mut bob_ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut bob_ws).await.contains("group:g1"));

    // The demo page is served at /.
    let page = http.get(format!("{}/", banner.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Switchboard demo"));
    let stranger = http.post(format!("{}/demo/notify/zed", banner.base)).send().await.unwrap();
    assert_eq!(stranger.status(), 404, "the demo's buttons know only alice and bob");
    let session: serde_json::Value =
        http.get(format!("{}/demo/session", banner.base)).send().await.unwrap().json().await.unwrap();
    assert!(session["tokens"]["bob"].as_str().is_some_and(|t| t.starts_with("eyJ")), "{session}");
    let overview = http.get(format!("{}/admin/api/overview", banner.base)).bearer_auth(ADMIN_TOKEN).send().await;
    assert_eq!(overview.unwrap().status(), 200);

    // SIGTERM: clients get 1001, the process exits cleanly, and no token reached the logs.
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    let output = tokio::time::timeout(WAIT, child.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("uri=/ws?token=[redacted]"), "requests are logged, redacted: {logs}");
    assert!(
        !logs.contains(&banner.token) && !logs.contains(&bob) && !logs.contains(&banner.key),
        "a secret reached the logs"
    );
    assert!(!logs.contains(ADMIN_TOKEN), "the admin token reached the logs");
    let in_span = logs.lines().find(|l| l.contains("connected") && l.contains("connection{app=demo endpoint=realtime"));
    let in_span = in_span.unwrap_or_else(|| panic!("a session's lines carry its connection span: {logs}"));
    assert!(in_span.contains(" id=") && in_span.contains("user=\"alice\""), "{in_span}");
    assert!(!logs.contains(" WARN ") && !logs.contains(" ERROR "), "a clean run and stop logs no warning: {logs}");
}

/// The next text frame, skipping presence signals: the demo app has presence on, and its
/// user's own `presence:online` may come at any point after `connected`.
async fn next_text<S>(ws: &mut S) -> String
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) if text.contains("\"type\":\"presence:") => continue,
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

#[test]
fn settings_layer_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = |slug: &str| format!(r#"{{"slug": "{slug}", "websockets": {{"rt": {{"path": "/{slug}"}}}}}}"#);
    std::fs::write(dir.path().join("from_file.json"), manifest("from_file")).unwrap();
    std::fs::write(dir.path().join("from_env.json"), manifest("from_env")).unwrap();
    std::fs::write(dir.path().join("sb.toml"), "manifests = [\"from_file.json\"]\nstore = \"sqlite::memory:\"\n")
        .unwrap();
    let token = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut command = std::process::Command::new(BIN);
        command.args(["token", "--config", "sb.toml", "--user", "u"]).args(args).current_dir(dir.path());
        command.env("FROM_FILE_JWT_SECRET", "a").env("FROM_ENV_JWT_SECRET", "b").env_remove("SWITCHBOARD_MANIFESTS");
        command.envs(extra_env.iter().copied()).output().unwrap()
    };
    assert!(token(&[], &["--app", "from_file"]).status.success(), "the file names the manifest");
    let env = [("SWITCHBOARD_MANIFESTS", "from_env.json")];
    assert!(token(&env, &["--app", "from_env"]).status.success(), "the environment beats the file");
    let refused = token(&env, &["--app", "from_file"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no app `from_file`"));
    let flag = token(&env, &["--app", "from_file", "--manifest", "from_file.json"]);
    assert!(flag.status.success(), "the flag beats the environment");

    std::fs::write(dir.path().join("bad.toml"), "bind = 8080\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("bad.toml:1:"), "{stderr}");
}

#[test]
fn unsupported_backends_fail_fast_with_a_way_forward() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, hint) in [
        (
            "--store",
            "postgres://sb:secret@127.0.0.1:1/sb",
            "cannot open store postgres://sb:***@127.0.0.1:1/sb (is PostgreSQL running",
        ),
        ("--store", "mysql://x", "unknown store"),
        ("--broker", "redis://127.0.0.1:1/", "cannot connect to the broker redis://127.0.0.1:1/"),
        ("--broker", "nats://127.0.0.1:1", "cannot connect to the broker nats://127.0.0.1:1"),
        ("--broker", "kafka://x", "unknown broker `kafka://x`; use memory, redis://HOST:PORT/ or nats://HOST:PORT"),
    ] {
        let out = run(&["serve", "--bind", "127.0.0.1:0", flag, value], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(hint), "{flag} {value}: {stderr}");
    }
}

#[test]
fn a_short_or_missing_admin_token_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.txt"), "tiny\n").unwrap();
    for (file, hint) in
        [("short.txt", "at least 16 characters"), ("absent.txt", "cannot read the admin token file absent.txt")]
    {
        let out = run(&["serve", "--bind", "127.0.0.1:0", "--admin-token-file", file], dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(hint), "{file}: {stderr}");
    }
}

/// Starts the zero-config server in `dir`; returns the child and its banner.
async fn serve_demo(dir: &std::path::Path) -> (tokio::process::Child, Banner) {
    serve_demo_on(dir, None).await
}

/// The demo server on the given store (default: SQLite in `dir`).
async fn serve_demo_on(dir: &std::path::Path, store: Option<&str>) -> (tokio::process::Child, Banner) {
    let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
    args.extend(store.map(|s| ["--store", s]).into_iter().flatten());
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SWITCHBOARD_MANIFESTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = read_banner(&mut lines).await;
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner)
}

#[tokio::test]
async fn events_published_before_a_kill_9_are_resumed_exactly_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, banner) = serve_demo(dir.path()).await;
    let http = reqwest::Client::new();
    let publish = |base: String, key: String, n: u64| {
        let http = http.clone();
        async move {
            let body = serde_json::json!({"channels": ["user:alice"], "type": "t", "data": n});
            let url = format!("{base}/api/v1/apps/demo/publish");
            let answer: serde_json::Value =
                http.post(url).bearer_auth(key).json(&body).send().await.unwrap().json().await.unwrap();
            answer["positions"]["user:alice"].clone()
        }
    };
    let first = publish(banner.base.clone(), banner.key.clone(), 1).await;
    for n in 2..=4 {
        publish(banner.base.clone(), banner.key.clone(), n).await;
    }
    // Every publish above was answered, so each is durable: kill -9 must not lose one.
    child.kill().await.unwrap();

    let (_child, banner) = serve_demo(dir.path()).await;
    let url = format!("{}/ws?token={}&resume=1", banner.base.replacen("http", "ws", 1), banner.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.contains("\"type\":\"connected\""));
    let position = serde_json::json!({"epoch": first["epoch"], "seq": 1});
    let resume = serde_json::json!({"type": "resume", "data": {"positions": {"user:alice": position}}});
    futures_util::SinkExt::send(&mut ws, Message::text(resume.to_string())).await.unwrap();
    let mut data = Vec::new();
    loop {
        let frame: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        if frame["type"] == "resumed" {
            assert_eq!(frame["data"]["recovered"], true, "{frame}");
            break;
        }
        data.push(frame["data"].as_u64().unwrap());
    }
    assert_eq!(data, [2, 3, 4], "exactly the missed events, in order");
}

/// After a store backup is restored, `switchboard epoch` starts a new epoch: a client
/// resuming from a position taken before it is told its channel could not be recovered,
/// instead of skipping the events that reuse those seqs.
#[tokio::test]
async fn epoch_after_a_restore_makes_old_positions_unrecoverable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run(&["epoch", "--store", "sqlite://./elsewhere.db"], dir.path());
    let error = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && error.contains("no store at"), "{error}");
    let (mut child, banner) = serve_demo(dir.path()).await;
    let body = serde_json::json!({"channels": ["user:alice"], "type": "t", "data": 1});
    let url = format!("{}/api/v1/apps/demo/publish", banner.base);
    let http = reqwest::Client::new();
    let answer: serde_json::Value =
        http.post(&url).bearer_auth(&banner.key).json(&body).send().await.unwrap().json().await.unwrap();
    let before = answer["positions"]["user:alice"].clone();
    child.kill().await.unwrap();

    let started = run(&["epoch", "--store", "sqlite://./switchboard.db"], dir.path());
    let said = String::from_utf8_lossy(&started.stdout);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    assert!(said.starts_with("new epoch ") && said.contains("for 1 channels with history of every app"), "{said}");
    let (_child, banner) = serve_demo(dir.path()).await;
    let url = format!("{}/ws?token={}&resume=1", banner.base.replacen("http", "ws", 1), banner.token);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(next_text(&mut ws).await.contains("\"type\":\"connected\""));
    let resume = serde_json::json!({"type": "resume", "data": {"positions": {"user:alice": before}}});
    futures_util::SinkExt::send(&mut ws, Message::text(resume.to_string())).await.unwrap();
    let resumed: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!((resumed["type"].as_str(), resumed["data"]["recovered"].as_bool()), (Some("resumed"), Some(false)));
    assert_eq!(resumed["data"]["unrecovered"], serde_json::json!(["user:alice"]), "{resumed}");
    let epoch = resumed["data"]["positions"]["user:alice"]["epoch"].clone();
    assert!(epoch.is_string() && epoch != before["epoch"] && said.contains(epoch.as_str().unwrap()), "{resumed}");
}

#[tokio::test]
async fn a_notification_the_api_acknowledged_survives_kill_9_on_both_stores() {
    let mut stores = vec![None];
    stores.extend(switchboard_store::testing::postgres_database().await.map(Some));
    for store in stores {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, banner) = serve_demo_on(dir.path(), store.as_deref()).await;
        let http = reqwest::Client::new();
        let body = serde_json::json!({"user": "alice", "title": "New Task", "message": "You have a new task"});
        let url = format!("{}/api/v1/apps/demo/notifications", banner.base);
        let response = http.post(url).bearer_auth(&banner.key).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let created: serde_json::Value = response.json().await.unwrap();
        // The 201 above means the row is committed: kill -9 right away must not lose it.
        child.kill().await.unwrap();

        let (_child, banner) = serve_demo_on(dir.path(), store.as_deref()).await;
        let url = format!("{}/api/v1/apps/demo/me/notifications", banner.base);
        let list: serde_json::Value =
            http.get(url).bearer_auth(&banner.token).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["notifications"][0]["id"], created["id"], "store {store:?}: {list}");
        assert_eq!(list["unread"], 1);
    }
}

/// Reads the server's log lines until one contains `needle`; returns it.
async fn log_line(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>, needle: &str) -> String {
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap();
        match line {
            Some(line) if line.contains(needle) => return line,
            Some(_) => continue,
            None => panic!("the server's log ended before `{needle}`"),
        }
    }
}

#[tokio::test]
async fn sighup_checks_the_files_on_disk_and_the_node_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"{"slug": "hup", "auth_policy": {"jwt": {"secret_env": "HUP_SECRET"}}, "websockets": {"rt": {"path": "/ws"}}}"#;
    std::fs::write(dir.path().join("hup.json"), manifest).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--manifest", "hup.json", "--store", "sqlite::memory:"])
        .current_dir(dir.path())
        .env("HUP_SECRET", "hangup-secret-0123456789")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = log_line(&mut lines, "listening").await;
    let addr = listening.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let pid = child.id().unwrap().to_string();
    let hangup = || assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());

    hangup();
    let verdict = log_line(&mut lines, "SIGHUP").await;
    assert!(verdict.contains("is valid") && verdict.contains("apps=1"), "{verdict}");

    std::fs::write(dir.path().join("hup.json"), "{\"slug\": \"hup\",\n \"websockets\": 7}").unwrap();
    hangup();
    let verdict = log_line(&mut lines, "SIGHUP").await;
    assert!(verdict.contains("would not start") && verdict.contains("hup.json:2:"), "{verdict}");

    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the node runs on after both hangups");
    child.kill().await.unwrap();
}
