//! Layering: the config file, then the environment and flags (clap merges those two).

use std::time::Duration;

use anyhow::{bail, Context};
use switchboard_config::duration;
use switchboard_config::server::ServerFile;

use crate::cli::ServeArgs;

/// Validated serve settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: String,
    /// Manifest files; empty for the demo.
    pub manifests: Vec<String>,
    /// Store URL.
    pub store: String,
    /// Broker URL.
    pub broker: String,
    /// Node id.
    pub node_id: String,
    /// Emit JSON logs.
    pub json_logs: bool,
    /// /readyz fails this long before sockets close.
    pub drain_grace: Duration,
    /// Sessions get this long to flush.
    pub drain_timeout: Duration,
    /// The admin console's token; `None` turns the console off.
    pub admin_token: Option<String>,
}

impl Settings {
    /// Settings for a server in tests or embedding: the given manifests, an in-memory store.
    pub fn for_manifests(manifests: Vec<String>) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            manifests,
            store: "sqlite::memory:".into(),
            broker: "memory".into(),
            node_id: "test".into(),
            json_logs: false,
            drain_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            admin_token: None,
        }
    }

    /// Layers file < environment < flags, then applies defaults.
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.apps.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {path}"))?;
                switchboard_config::server::parse(path, &text).map_err(anyhow::Error::msg)?
            }
            None => ServerFile::default(),
        };
        let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("log format `{log_format}` is not text or json");
        }
        let span = |flag: Option<String>,
                    file: Option<duration::DurationText>,
                    default: Duration|
         -> anyhow::Result<Duration> {
            match flag {
                Some(text) => duration::parse(&text).map_err(anyhow::Error::msg),
                None => Ok(file.map_or(default, |d| d.0)),
            }
        };
        let manifests =
            if args.apps.manifests.is_empty() { file.manifests.unwrap_or_default() } else { args.apps.manifests };
        Ok(Self {
            bind: args.bind.or(file.bind).unwrap_or_else(|| "127.0.0.1:8080".into()),
            manifests,
            store: args.apps.store.or(file.store).unwrap_or_else(|| "sqlite://./switchboard.db".into()),
            broker: args.broker.or(file.broker).unwrap_or_else(|| "memory".into()),
            node_id: args.node_id.or(file.node_id).unwrap_or_else(default_node_id),
            json_logs: log_format == "json",
            drain_grace: span(args.drain_grace, file.drain_grace, Duration::ZERO)?,
            drain_timeout: span(args.drain_timeout, file.drain_timeout, Duration::from_secs(10))?,
            admin_token: admin_token(args.admin_token_file.or(file.admin_token_file))?,
        })
    }
}

/// The admin token: `SWITCHBOARD_ADMIN_TOKEN`, or the file named (trimmed). Short ones are
/// refused, since the console can disconnect users and publish.
fn admin_token(file: Option<String>) -> anyhow::Result<Option<String>> {
    let token = match (std::env::var("SWITCHBOARD_ADMIN_TOKEN"), file) {
        (Ok(token), _) if !token.is_empty() => token,
        (_, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the admin token file {path}"))?
            .trim()
            .to_owned(),
        _ => return Ok(None),
    };
    if token.len() < 16 {
        bail!("the admin token must be at least 16 characters (it guards disconnects and publishes)");
    }
    Ok(Some(token))
}

fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}
