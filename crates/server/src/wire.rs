//! The one place where implementations are chosen: store, broker and apps.

use std::sync::Arc;

use anyhow::{bail, Context};
use switchboard_broker::memory::MemoryBroker;
use switchboard_broker::nats::NatsBroker;
use switchboard_broker::redis::RedisBroker;
use switchboard_broker::Broker;
use switchboard_config::{EnvSecrets, LoadedManifest, ManifestErrors};
use switchboard_hub::AppSpec;
use switchboard_store::{PgStore, SqliteStore, Store};

use crate::demo::DemoCredentials;
use crate::Settings;

/// Opens the configured store.
pub async fn store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url).await.with_context(|| format!("cannot open store {url}"))?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::open(url).await.with_context(|| {
            format!(
                "cannot open store {} (is PostgreSQL running there, and may this role connect?)",
                redact_password(url)
            )
        })?;
        return Ok(Arc::new(store));
    }
    bail!("unknown store `{url}`; use sqlite://PATH (e.g. sqlite://./switchboard.db) or postgres://USER:PASSWORD@HOST/DATABASE")
}

/// The file of a `sqlite://PATH` store URL (`None` for other stores and in-memory SQLite).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// A database URL fit for a log line: `postgres://user:secret@host` becomes `postgres://user:***@host`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Connects the configured broker.
pub async fn broker(url: &str) -> anyhow::Result<Arc<dyn Broker>> {
    match url {
        "memory" => Ok(Arc::new(MemoryBroker::standalone())),
        u if u.starts_with("redis://") || u.starts_with("rediss://") => {
            let broker = RedisBroker::connect(u)
                .await
                .with_context(|| format!("cannot connect to the broker {}", redact_password(u)))?;
            Ok(Arc::new(broker))
        }
        // `tls://` is NATS's own scheme for a TLS connection.
        u if u.starts_with("nats://") || u.starts_with("tls://") => {
            let broker = NatsBroker::connect(u)
                .await
                .with_context(|| format!("cannot connect to the broker {}", redact_password(u)))?;
            Ok(Arc::new(broker))
        }
        other => bail!(
            "unknown broker `{}`; use memory, redis://HOST:PORT/ or nats://HOST:PORT (with TLS: \
             rediss://HOST:PORT/ or tls://HOST:PORT, and ?ca=/path/ca.pem for a private CA)",
            redact_password(other)
        ),
    }
}

/// Reads and validates the manifest files, or the demo manifest when there are none; every
/// error of every file at once.
pub fn manifests(settings: &Settings) -> anyhow::Result<Vec<LoadedManifest>> {
    if settings.manifests.is_empty() {
        let demo = switchboard_config::demo::MANIFEST;
        return Ok(vec![switchboard_config::parse(switchboard_config::demo::FILE, demo)?]);
    }
    let (mut loaded, mut errors) = (Vec::new(), Vec::new());
    for file in &settings.manifests {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read manifest {file}"))?;
        match switchboard_config::parse_all(file, &text) {
            Ok(manifest) => loaded.push(manifest),
            Err(found) => errors.extend(found.0),
        }
    }
    if !errors.is_empty() {
        return Err(ManifestErrors(errors).into());
    }
    switchboard_config::check_unique(&loaded)?;
    Ok(loaded)
}

/// Resolves every manifest to the spec the hub runs, logging warnings.
pub fn apps(loaded: &[LoadedManifest], demo: Option<&DemoCredentials>) -> anyhow::Result<Vec<AppSpec>> {
    let secrets = EnvSecrets { fallbacks: demo.map(DemoCredentials::env).unwrap_or_default() };
    loaded
        .iter()
        .map(|m| {
            let resolved = switchboard_config::resolve(m, &secrets)?;
            for warning in &resolved.warnings {
                tracing::warn!(app = %resolved.spec.slug, "{warning}");
            }
            Ok(resolved.spec)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// `tls://` (NATS over TLS) and `rediss://` reach their brokers, which then fail to
    /// connect to port 1; an unknown scheme names the TLS ones too.
    #[tokio::test]
    async fn tls_broker_urls_reach_their_brokers() {
        let error = |url: &'static str| async move { format!("{:#}", super::broker(url).await.err().unwrap()) };
        let nats = error("tls://127.0.0.1:1?ca=/nonexistent/ca.pem").await;
        assert!(nats.starts_with("cannot connect to the broker tls://127.0.0.1:1"), "{nats}");
        assert!(nats.contains("cannot read the CA file /nonexistent/ca.pem"), "{nats}");
        let redis = error("rediss://127.0.0.1:1/").await;
        assert!(redis.starts_with("cannot connect to the broker rediss://127.0.0.1:1/"), "{redis}");
        let unknown = error("nats+tls://u:secret@h:1").await;
        assert!(unknown.contains("unknown broker `nats+tls://u:***@h:1`"), "{unknown}");
        assert!(unknown.contains("rediss://HOST:PORT/ or tls://HOST:PORT"), "{unknown}");
    }
}
