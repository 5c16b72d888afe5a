//! The brokers over TLS, against real servers of the test's own: a TLS-only redis-server and
//! a TLS nats-server on loopback, with certificates from a throwaway CA made here.
//!
//! Each test skips (with a note) when its server binary is missing, unless
//! `SWITCHBOARD_REQUIRE_REDIS` / `SWITCHBOARD_REQUIRE_NATS` is set (scripts/test sets them),
//! which makes the missing binary a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use switchboard_broker::nats::NatsBroker;
use switchboard_broker::redis::RedisBroker;
use switchboard_broker::testing::{conformance_on, Recorder};
use switchboard_broker::{Broker, BrokerError, Envelope, Topic};
use tokio::process::{Child, Command};

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sb-{name}-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway CA, a server certificate it signed for `localhost` and `127.0.0.1`, and a
/// second CA that signed nothing here (the "wrong CA").
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn new_ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Pki {
    fn write(dir: &Path) -> Self {
        let (ca_params, ca_key, ca_pem) = new_ca("switchboard test CA");
        let (_, _, other_pem) = new_ca("some other CA");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let pki = Self {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&pki.ca, ca_pem).unwrap();
        std::fs::write(&pki.other_ca, other_pem).unwrap();
        std::fs::write(&pki.cert, cert.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }
}

/// Whether `binary` runs; if not, the test skips, or fails when `require` is set.
fn have(binary: &str, require: &str) -> bool {
    let found = std::process::Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(std::env::var_os(require).is_none(), "{require} is set but `{binary}` is not installed");
        eprintln!(
            "TLS test skipped: `{binary}` is not installed (apt-get install it, or set {require} to fail instead)"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `command` and waits until `port` accepts connections.
async fn spawn(command: &mut Command, port: u16) -> Child {
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{command:?} did not listen on port {port}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn envelope(channel: &str, payload: String) -> Envelope {
    Envelope { app: "tls".into(), channel: channel.into(), payload: payload.into(), seq: 0, published_us: 0 }
}

/// One node subscribes to `channel`, another publishes until one arrives (bounded).
async fn round_trip(receiving: &dyn Broker, sending: &dyn Broker, channel: &str) {
    let recorder = Arc::new(Recorder::default());
    receiving.attach(recorder.clone());
    receiving.subscribe(Topic { app: "tls".into(), channel: channel.into() });
    receiving.settle().await;
    for n in 0..200 {
        let _ = sending.publish(envelope(channel, n.to_string())).await;
        let got = tokio::time::timeout(Duration::from_millis(50), recorder.wait_for(1)).await;
        if got.is_ok_and(|payloads| !payloads.is_empty()) {
            return;
        }
    }
    panic!("no publish on {channel} went from one node to the other over TLS");
}

fn error_of<B>(result: Result<B, BrokerError>) -> String {
    match result {
        Ok(_) => panic!("connected, but should have failed"),
        Err(e) => e.to_string(),
    }
}

fn assert_says(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(error.contains(part), "`{part}` is missing from the error: {error}");
    }
}

#[tokio::test]
async fn redis_over_tls() {
    if !have("redis-server", "SWITCHBOARD_REQUIRE_REDIS") {
        return;
    }
    let dir = TempDir::new("redis-tls");
    let pki = Pki::write(&dir.0);
    let port = free_port();
    let _server = spawn(
        Command::new("redis-server").args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            path(&pki.cert),
            "--tls-key-file",
            path(&pki.key),
            "--tls-ca-cert-file",
            path(&pki.ca),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            path(&dir.0),
        ]),
        port,
    )
    .await;

    // Verified against the CA: the whole conformance suite, over TLS.
    let url = format!("rediss://127.0.0.1:{port}/?ca={}", path(&pki.ca));
    conformance_on(|| async { RedisBroker::connect(&url).await.unwrap() }).await;
    // By name, with a channel prefix beside the CA.
    let url = format!("rediss://localhost:{port}/?channel_prefix=blue&ca={}", path(&pki.ca));
    let (a, b) = (RedisBroker::connect(&url).await.unwrap(), RedisBroker::connect(&url).await.unwrap());
    round_trip(&a, &b, "room:by-name").await;

    // A CA that did not sign the server's certificate.
    let error = error_of(RedisBroker::connect(&format!("rediss://127.0.0.1:{port}/?ca={}", path(&pki.other_ca))).await);
    assert_says(&error, &["certificate", "?ca="]);
    // No CA: the built-in public roots do not know the test CA either.
    let error = error_of(RedisBroker::connect(&format!("rediss://127.0.0.1:{port}/")).await);
    assert_says(&error, &["certificate", "?ca="]);
    // Plain redis:// to the TLS-only port.
    let error = error_of(RedisBroker::connect(&format!("redis://127.0.0.1:{port}/")).await);
    assert_says(&error, &["rediss://"]);
    // A CA on a plain URL, and a CA file that is not there.
    let error = error_of(RedisBroker::connect(&format!("redis://127.0.0.1:{port}/?ca={}", path(&pki.ca))).await);
    assert_says(&error, &["ca=", "rediss://"]);
    let missing = dir.0.join("missing.pem");
    let error = error_of(RedisBroker::connect(&format!("rediss://127.0.0.1:{port}/?ca={}", path(&missing))).await);
    assert_says(&error, &[path(&missing)]);
    let error = error_of(RedisBroker::connect(&format!("rediss://127.0.0.1:{port}/?ca={}", path(&pki.key))).await);
    assert_says(&error, &["no PEM certificate"]);
}

fn nats_tls(port: u16, pki: &Pki) -> Command {
    let mut command = Command::new("nats-server");
    command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls", "--tlscert"]);
    command.args([path(&pki.cert), "--tlskey", path(&pki.key)]);
    command
}

#[tokio::test]
async fn nats_over_tls() {
    if !have("nats-server", "SWITCHBOARD_REQUIRE_NATS") {
        return;
    }
    let dir = TempDir::new("nats-tls");
    let pki = Pki::write(&dir.0);
    let port = free_port();
    let mut server = spawn(&mut nats_tls(port, &pki), port).await;

    // tls:// verified against the CA: the whole conformance suite.
    let url = format!("tls://127.0.0.1:{port}?ca={}", path(&pki.ca));
    conformance_on(|| async { NatsBroker::connect(&url).await.unwrap() }).await;
    // nats:// with a CA requires TLS too; by name, with a channel prefix.
    let url = format!("nats://localhost:{port}/?ca={}&channel_prefix=blue", path(&pki.ca));
    let (a, b) = (NatsBroker::connect(&url).await.unwrap(), NatsBroker::connect(&url).await.unwrap());
    round_trip(&a, &b, "room:by-name").await;

    // A CA that did not sign the server's certificate.
    let error = error_of(NatsBroker::connect(&format!("tls://127.0.0.1:{port}?ca={}", path(&pki.other_ca))).await);
    assert_says(&error, &["certificate", "?ca="]);
    // Plain nats:// to a server that requires TLS upgrades (as NATS clients do), and checks
    // the certificate against the built-in public roots, which do not know the test CA.
    let error = error_of(NatsBroker::connect(&format!("nats://127.0.0.1:{port}")).await);
    assert_says(&error, &["certificate", "?ca="]);
    let missing = dir.0.join("missing.pem");
    let error = error_of(NatsBroker::connect(&format!("tls://127.0.0.1:{port}?ca={}", path(&missing))).await);
    assert_says(&error, &[path(&missing)]);

    // tls:// to a server without TLS: refused before any credentials are sent.
    let plain = free_port();
    let _plain = spawn(Command::new("nats-server").args(["-a", "127.0.0.1", "-p", &plain.to_string()]), plain).await;
    let error = error_of(NatsBroker::connect(&format!("tls://127.0.0.1:{plain}?ca={}", path(&pki.ca))).await);
    assert_says(&error, &["does not offer TLS"]);

    // The TLS server restarts under two nodes: they reconnect over TLS and subscribe again.
    let url = format!("tls://127.0.0.1:{port}?ca={}", path(&pki.ca));
    let (receiving, sending) = (NatsBroker::connect(&url).await.unwrap(), NatsBroker::connect(&url).await.unwrap());
    let recorder = Arc::new(Recorder::default());
    receiving.attach(recorder.clone());
    receiving.subscribe(Topic { app: "tls".into(), channel: "room:restart".into() });
    receiving.settle().await;
    server.kill().await.unwrap();
    let _server = spawn(&mut nats_tls(port, &pki), port).await;
    for n in 0..200 {
        let _ = sending.publish(envelope("room:restart", n.to_string())).await;
        let got = tokio::time::timeout(Duration::from_millis(50), recorder.wait_for(1)).await;
        if got.is_ok_and(|payloads| !payloads.is_empty()) {
            return;
        }
    }
    panic!("no publish reached the node after its TLS NATS server restarted");
}
