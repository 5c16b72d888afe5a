//! Unchanged Socket.IO front ends against a live server: the real `socket.io-client` (npm)
//! and `python-socketio` (PyPI) run seed 003's paths (connect with auth, `on` and `onAny`,
//! emit with acknowledgement, reconnect and recover) over both transports.
//!
//! The clients come from `tests/socketio` (`npm ci`) and the repository's `.venv`
//! (`pip install python-socketio[client]`); scripts/test installs both and sets
//! `SWITCHBOARD_REQUIRE_CLIENTS`, which makes a missing one a failure. Without it these
//! tests say what is missing and pass.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

use crate::support::{TestServer, API_KEY, WAIT};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a client script for `user`; its last line of output, as JSON. `None` when the
/// client is not installed (and not required).
async fn run(server: &TestServer, user: &str, program: &Path, script: &str, mode: &str) -> Option<Value> {
    let installed = program.exists() && root().join("tests/socketio/node_modules/socket.io-client").exists();
    if !installed {
        assert!(std::env::var_os("SWITCHBOARD_REQUIRE_CLIENTS").is_none(), "{} is not installed", program.display());
        eprintln!("skipped: {} or the npm packages are missing; scripts/test installs them", program.display());
        return None;
    }
    let output = tokio::process::Command::new(program)
        .arg(root().join("tests/socketio").join(script))
        .arg(mode)
        .env("URL", server.url(""))
        .env("TOKEN", server.token(user, json!({})))
        .env("KEY", API_KEY)
        .env("USER", user)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, output).await.expect("the client finishes in time").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let result = serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("{script} {mode}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    Some(result)
}

fn node() -> PathBuf {
    PathBuf::from("/usr/bin/node").canonicalize().unwrap_or_else(|_| PathBuf::from("/usr/bin/node"))
}

fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

#[tokio::test]
async fn socket_io_client_runs_the_seed_front_end_over_polling_and_websocket() {
    let server = TestServer::start().await;
    for mode in ["polling", "websocket"] {
        let Some(seen) = run(&server, &format!("ann-{mode}"), &node(), "frontend.mjs", mode).await else { return };
        assert_eq!(seen["title"], "New Task", "{mode}: {seen}");
        assert_eq!(seen["read"]["ok"], true, "{mode}: emit with ack answers {{ok, data}}: {seen}");
        assert_eq!(seen["read"]["data"]["unread"], 0);
        assert_eq!(seen["unknown"]["ok"], false);
        assert_eq!(seen["unknown"]["error"]["code"], "unknown_type");
        assert_eq!(seen["badField"]["error"]["code"], "bad_request");
        let any: Vec<&str> = seen["any"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(any.contains(&"notification:new") && any.contains(&"notification:count"), "onAny: {any:?}");
        assert_eq!(seen["transport"], "websocket", "{mode}: polling upgrades");
    }
}

#[tokio::test]
async fn socket_io_client_recovers_missed_events_after_a_dropped_transport() {
    let server = TestServer::start().await;
    let Some(seen) = run(&server, "rec", &node(), "frontend.mjs", "recover").await else { return };
    assert_eq!(seen["rounds"], json!([false, true]), "socket.recovered on the reconnect: {seen}");
    assert_eq!(seen["ticks"], json!([1, 2, 3]), "every event once, in order");
    assert_eq!(seen["after"]["ok"], true);
}

#[tokio::test]
async fn socket_io_client_gets_a_readable_connect_error_for_a_bad_token() {
    let server = TestServer::start().await;
    let Some(seen) = run(&server, "x", &node(), "frontend.mjs", "bad-token").await else { return };
    assert!(seen["connect_error"].as_str().unwrap().to_lowercase().contains("token"), "{seen}");
    assert_eq!(seen["code"], 4401);
}

#[tokio::test]
async fn socket_io_client_negotiates_compression_where_the_endpoint_declares_it() {
    let mut manifest = crate::support::manifest();
    manifest["websockets"]["legacy"]["compression"] = json!({});
    let server = TestServer::start_with(vec![manifest], |_| {}).await;
    let Some(seen) = run(&server, "zip", &node(), "frontend.mjs", "compressed").await else { return };
    assert!(seen["extensions"].as_str().unwrap().starts_with("permessage-deflate"), "{seen}");
    assert_eq!(seen["intact"], true, "{seen}");
    let (raw, wire) = (seen["raw"].as_u64().unwrap(), seen["wire"].as_u64().unwrap());
    assert!(wire * 4 < raw, "{wire} bytes on the wire for a {raw}-byte event");
    assert_eq!(seen["unknown"]["error"]["code"], "unknown_type", "the server read the compressed emit: {seen}");
    // Without `compression` the offer is declined and the same client still works.
    let plain = TestServer::start().await;
    let Some(seen) = run(&plain, "zip", &node(), "frontend.mjs", "compressed").await else { return };
    assert_eq!(seen["extensions"], "", "{seen}");
    assert_eq!(seen["intact"], true, "{seen}");
    assert!(seen["wire"].as_u64().unwrap() > seen["raw"].as_u64().unwrap(), "{seen}");
}

#[tokio::test]
async fn python_socketio_with_one_argument_handlers_runs_the_front_end_over_polling_and_websocket() {
    let server = TestServer::start().await;
    for mode in ["polling", "websocket"] {
        let Some(seen) = run(&server, &format!("py-{mode}"), &python(), "frontend.py", mode).await else { return };
        assert_eq!(seen["title"], "From Python", "{mode}: {seen}");
        assert_eq!(seen["read"]["ok"], true, "{seen}");
        assert_eq!(seen["unknown"]["error"]["code"], "unknown_type");
        assert_eq!(seen["transport"], mode);
        assert_eq!(seen["counts"][0], json!({"unread": 1}), "a one-argument handler got exactly the data: {seen}");
    }
}
