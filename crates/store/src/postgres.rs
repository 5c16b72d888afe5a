//! The store for several nodes: one PostgreSQL database shared by all of them.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::{migrate, StoreError};

/// A [`Store`](crate::Store) on PostgreSQL.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations.
    ///
    /// TLS as libpq does it: `sslmode=prefer` (the default) encrypts when the server offers
    /// TLS, `require` always encrypts, `verify-ca` and `verify-full` also check the server's
    /// certificate (against `sslrootcert=/path/ca.pem` and the built-in public roots;
    /// `verify-full` also checks that it names the host). As in libpq, `require` with a
    /// `sslrootcert` checks the CA like `verify-ca`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        let root_cert = root_cert(url);
        if let Some(path) = root_cert.as_ref().filter(|c| !c.starts_with("-----BEGIN")) {
            // sqlx's own error would not name the file.
            std::fs::metadata(path).map_err(|e| {
                StoreError::Tls(format!("cannot read the CA file {path} (the store URL's sslrootcert=): {e}"))
            })?;
        }
        if root_cert.is_some() && matches!(options.get_ssl_mode(), PgSslMode::Require) {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
        // One plain connection first: a pool reports only "timed out", this says why
        // (refused, unknown database, bad password, an untrusted certificate).
        PgConnection::connect_with(&options).await.map_err(tls_advice)?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrate::postgres(&pool).await?;
        Ok(Self { pool })
    }
}

/// The URL's `sslrootcert` (or `PGSSLROOTCERT`, which sqlx reads too, as a path or as PEM
/// text), percent-decoded.
fn root_cert(url: &str) -> Option<String> {
    let query = url.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or(q)).unwrap_or("");
    let from_url = query.split('&').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        matches!(key, "sslrootcert" | "ssl-root-cert" | "ssl-ca").then(|| percent_decode(value))
    });
    from_url.or_else(|| std::env::var("PGSSLROOTCERT").ok()).filter(|cert| !cert.is_empty())
}

/// `%XX` escapes and `+` decoded, as a URL query's values are.
fn percent_decode(text: &str) -> String {
    let (bytes, mut out) = (text.as_bytes(), Vec::with_capacity(text.len()));
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A failed TLS handshake, with what to do about it. (sqlx reports a certificate the
/// handshake refused as an I/O error.)
fn tls_advice(e: sqlx::Error) -> StoreError {
    let message = match &e {
        sqlx::Error::Tls(tls) => tls.to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        _ => return e.into(),
    };
    let advice = if message.contains("UnknownIssuer") || message.contains("BadSignature") {
        "; the server's certificate is not signed by a CA this node trusts: name the CA that signed it \
         (a PEM file) with sslrootcert=/path/ca.pem in the store URL"
    } else if message.contains("not valid for name") || message.contains("NotValidForName") {
        "; connect by a host name (or IP address) that the server's certificate holds, or use \
         sslmode=verify-ca to check the CA only"
    } else if message.contains("expired") || message.contains("Expired") || message.contains("not valid yet") {
        "; the server's certificate is outside its validity period (or this machine's clock is wrong)"
    } else if message.contains("does not support TLS") {
        "; enable ssl on the server, or use sslmode=prefer or disable"
    } else {
        ""
    };
    match e {
        sqlx::Error::Io(_) if advice.is_empty() => e.into(),
        _ => StoreError::Tls(format!("{message}{advice}")),
    }
}

impl PgStore {
    async fn append(&self, events: &[crate::HistoryAppend]) -> Result<Vec<(String, u64)>, StoreError> {
        history_append(&self.pool, events).await
    }

    async fn ping_writes(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn finish_writes(&self) {}

    /// PostgreSQL's writes are all through the pool.
    async fn write_notification(&self, _: &crate::NewNotification, _: u32) -> Option<Result<u64, StoreError>> {
        None
    }

    /// See [`PgStore::write_notification`].
    async fn write_message(&self, _: &crate::NewMessage) -> Option<Result<crate::Message, StoreError>> {
        None
    }

    /// See [`PgStore::quick_strings`].
    fn quick_conversation(&self, _app: &str, _id: &str) -> Option<Option<crate::Conversation>> {
        None
    }

    /// PostgreSQL's reads are all through the pool.
    fn quick_strings(&self, _sql: &str, _params: &[&str]) -> Option<Vec<String>> {
        None
    }
}

crate::sql::core::core_store!(PgStore, Postgres);
// Read committed would let an append land between a read's statements.
crate::sql::history::history_fns!(Postgres, Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
crate::sql::inbox::inbox_store!(PgStore, Postgres);
crate::sql::chat::chat_store!(PgStore, Postgres, crate::sql::chat::postgres_search(), str::to_owned);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[tokio::test]
    async fn postgres_passes_conformance_and_reopens() {
        let Some(url) = crate::testing::postgres_database().await else { return };
        let store = PgStore::open(&url).await.unwrap();
        crate::testing::conformance(&store).await;
        store.close().await;
        let store = PgStore::open(&url).await.unwrap();
        crate::testing::survives_reopen(&store).await;
        store.close().await;
    }

    #[test]
    fn the_root_cert_is_read_from_the_url() {
        let url = "postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ssl/my%20ca.pem";
        assert_eq!(root_cert(url).as_deref(), Some("/etc/ssl/my ca.pem"));
        assert_eq!(root_cert("postgres://u@h/db?ssl-ca=/ca.pem&sslmode=require").as_deref(), Some("/ca.pem"));
        if std::env::var_os("PGSSLROOTCERT").is_none() {
            assert_eq!(root_cert("postgres://u@h/db?sslmode=require"), None);
        }
    }

    #[tokio::test]
    async fn concurrent_opens_migrate_once() {
        let Some(url) = crate::testing::postgres_database().await else { return };
        let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let versions: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations").fetch_one(&a.pool).await.unwrap();
        assert_eq!(versions as usize, migrate::POSTGRES.len());
        a.close().await;
        b.close().await;
    }
}
