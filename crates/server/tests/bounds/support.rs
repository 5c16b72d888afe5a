//! One server process per test, and its memory.

use std::time::Duration;

use serde_json::Value;
use tokio::process::Child;

use crate::common;

pub(crate) const SECRET: &str = "bounds-secret-0123456789";
pub(crate) const KEY: &str = "sk_bounds_0123456789";
/// Bound on every wait.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// A server process for one manifest (app `bounds`, its secret and key in files beside it).
pub(crate) struct Server {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start(manifest: Value) -> Self {
        Self::start_with(manifest, &[]).await
    }

    /// With extra `serve` flags.
    pub(crate) async fn start_with(manifest: Value, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bounds.json"), manifest.to_string()).unwrap();
        std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        std::fs::write(dir.path().join("key.txt"), KEY).unwrap();
        let mut args = vec!["--manifest", "bounds.json", "--store", "sqlite://bounds.db"];
        args.extend_from_slice(flags);
        let (child, base) = common::serve(dir.path(), &args, "warn,switchboard=info").await;
        Self { child, base, http: reqwest::Client::new(), _dir: dir }
    }

    /// `ws://127.0.0.1:PORT` + `path`.
    pub(crate) fn ws(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http", "ws", 1))
    }

    /// Stalls the server's store until the returned lock is dropped: another connection
    /// holds SQLite's write lock, so commits wait (up to the store's 5 s busy timeout).
    pub(crate) fn stall_store(&self) -> rusqlite::Connection {
        let lock = rusqlite::Connection::open(self._dir.path().join("bounds.db")).unwrap();
        lock.execute_batch("BEGIN IMMEDIATE").unwrap();
        lock
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The process's resident memory, in MiB.
    pub(crate) fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
    }

    /// Fails when memory grew more than `budget_mib` over `baseline` (MiB), naming the flood.
    pub(crate) fn assert_within(&self, flood: &str, baseline: f64, budget_mib: f64) {
        let now = self.rss_mib();
        println!("{flood}: RSS {baseline:.1} -> {now:.1} MiB (budget +{budget_mib} MiB)");
        assert!(
            now - baseline <= budget_mib,
            "{flood}: RSS grew {:.1} MiB, over the {budget_mib} MiB budget",
            now - baseline
        );
    }

    /// A token for `user` of app `bounds`.
    pub(crate) fn token(&self, user: &str) -> String {
        let now = switchboard_hub::unix_ms() / 1000;
        let claims = serde_json::json!({"sub": user, "exp": now + 600});
        let Value::Object(claims) = claims else { unreachable!() };
        switchboard_auth::mint(switchboard_auth::Algorithm::HS256, SECRET.as_bytes(), &claims).unwrap()
    }
}

/// The manifest the bound tests start from: a native endpoint with auth at `/ws`, an
/// anonymous one at `/open`, Socket.IO at `/socket.io/`.
pub(crate) fn manifest() -> Value {
    serde_json::json!({
        "slug": "bounds",
        "auth_policy": {"jwt": {"secret_file": "secret.txt"}},
        "api_key_file": "key.txt",
        "websockets": {
            "realtime": {"path": "/ws"},
            "open": {"path": "/open", "auth": {"required": false}},
            "legacy": {"path": "/socket.io/", "protocol": "socket.io"}
        },
        "features": {"presence": false}
    })
}
