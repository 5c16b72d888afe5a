//! PostgreSQL over TLS, against a server of the test's own: initdb and pg_ctl (Debian's
//! packages, as scripts/postgres.sh uses them) with `ssl=on`, a certificate from a throwaway
//! CA made here, and a pg_hba.conf that accepts TCP connections only over TLS.
//!
//! Skips (with a note) when the server binaries are missing, unless
//! `SWITCHBOARD_REQUIRE_POSTGRES` is set (scripts/test sets it), which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::{Connection, PgConnection};
use switchboard_store::{PgStore, Store};

/// Debian's PostgreSQL server binaries, newest version first.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name).and_then(|v| v.to_str()).unwrap_or("0").to_owned();
        version.parse::<u32>().unwrap_or(0)
    });
    let bin = found.pop();
    if bin.is_none() {
        assert!(
            std::env::var_os("SWITCHBOARD_REQUIRE_POSTGRES").is_none(),
            "SWITCHBOARD_REQUIRE_POSTGRES is set but PostgreSQL's initdb is not installed"
        );
        eprintln!("TLS test skipped: PostgreSQL is not installed (apt-get install postgresql)");
    }
    bin
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// A server binary's command, as the postgres user when this is root (initdb refuses root).
fn command(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(root: bool, program: &Path, args: &[&str]) {
    let out = command(root, program).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{program:?} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A throwaway TLS-only PostgreSQL server; stopped and deleted when dropped.
struct Server {
    root: bool,
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
    other_ca: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = command(self.root, &self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

impl Server {
    fn start(bin: PathBuf) -> Self {
        let root = as_root();
        let dir = std::env::temp_dir().join(format!("sb-pg-tls-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Self { root, bin, port, ca: dir.join("ca.pem"), other_ca: dir.join("other-ca.pem"), dir };
        let (ca_params, ca_key, ca_pem) = new_ca("switchboard test CA");
        let (_, _, other_pem) = new_ca("some other CA");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key)).unwrap();
        let (cert_file, key_file) = (server.dir.join("server.pem"), server.dir.join("server.key"));
        std::fs::write(&server.ca, ca_pem).unwrap();
        std::fs::write(&server.other_ca, other_pem).unwrap();
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        // PostgreSQL refuses a key file others may read.
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        if root {
            let dir = server.dir.to_str().unwrap().to_owned();
            let status = Command::new("chown").args(["-R", "postgres", &dir]).status().unwrap();
            assert!(status.success(), "chown postgres {dir}");
        }
        let data = server.dir.join("data");
        run(
            root,
            &server.bin.join("initdb"),
            &["-D", data.to_str().unwrap(), "-U", "switchboard", "--auth=trust", "-E", "UTF8", "--no-sync"],
        );
        // TCP only over TLS: a connection that is not encrypted is refused by the server.
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n").unwrap();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {dir} -c fsync=off -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}",
            port = server.port,
            dir = server.dir.display(),
            cert = cert_file.display(),
            key = key_file.display(),
        );
        let log = server.dir.join("server.log");
        let pg_ctl = server.bin.join("pg_ctl");
        run(
            root,
            &pg_ctl,
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60", "-o", &options, "start"],
        );
        server
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://switchboard@{host}:{}/postgres?{params}", self.port)
    }
}

async fn open_error(url: &str) -> String {
    match PgStore::open(url).await {
        Ok(_) => panic!("{url} opened, but should have failed"),
        Err(e) => e.to_string(),
    }
}

fn assert_says(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(error.contains(part), "`{part}` is missing from the error: {error}");
    }
}

#[tokio::test]
async fn postgres_over_tls() {
    let Some(bin) = postgres_bin() else { return };
    let server = Server::start(bin);
    let ca = server.ca.display().to_string();
    let other_ca = server.other_ca.display().to_string();

    // verify-full with the CA: the conformance suite, on a connection that is encrypted.
    let url = server.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let store = PgStore::open(&url).await.unwrap();
    switchboard_store::testing::conformance(&store).await;
    store.close().await;
    let mut connection = PgConnection::connect(&url).await.unwrap();
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert!(encrypted, "the connection is encrypted");
    connection.close().await.unwrap();
    // By name (the certificate holds both).
    PgStore::open(&server.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}")))
        .await
        .unwrap()
        .close()
        .await;
    // require: encrypted, the certificate not checked (as libpq does without a root CA).
    PgStore::open(&server.url("127.0.0.1", "sslmode=require")).await.unwrap().close().await;

    // A CA that did not sign the server's certificate.
    let error = open_error(&server.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={other_ca}"))).await;
    assert_says(&error, &["certificate", "sslrootcert="]);
    // No CA: the built-in public roots do not know the test CA.
    let error = open_error(&server.url("127.0.0.1", "sslmode=verify-ca")).await;
    assert_says(&error, &["certificate", "sslrootcert="]);
    // require with a root CA checks it, as libpq does: the wrong one fails.
    let error = open_error(&server.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other_ca}"))).await;
    assert_says(&error, &["certificate", "sslrootcert="]);
    // A CA file that is not there.
    let missing = server.dir.join("missing.pem").display().to_string();
    let error = open_error(&server.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={missing}"))).await;
    assert_says(&error, &[&missing]);
    // Without TLS, this server refuses the connection.
    let error = open_error(&server.url("127.0.0.1", "sslmode=disable")).await;
    assert_says(&error, &["no encryption"]);
}
