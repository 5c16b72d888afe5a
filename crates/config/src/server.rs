//! The optional TOML config file of `switchboard serve` (`--config`).
//!
//! Sources layer as file, then environment (`SWITCHBOARD_*`), then flags: each later
//! source wins. The binary does the layering; this is the file's shape.

use serde::Deserialize;

use crate::duration::DurationText;

/// `switchboard.toml`. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub bind: Option<String>,
    /// Manifest files; none means the demo app.
    pub manifests: Option<Vec<String>>,
    /// `sqlite://path` or `postgres://...`.
    pub store: Option<String>,
    /// `memory`, `redis://...` or `nats://...`.
    pub broker: Option<String>,
    /// This node's id in a cluster.
    pub node_id: Option<String>,
    /// `text` or `json` logs.
    pub log_format: Option<String>,
    /// How long /readyz fails before sockets close, so load balancers notice.
    pub drain_grace: Option<DurationText>,
    /// How long sessions get to flush their queues at shutdown.
    pub drain_timeout: Option<DurationText>,
    /// A file holding the admin console's token; without one (or `SWITCHBOARD_ADMIN_TOKEN`)
    /// the console is off.
    pub admin_token_file: Option<String>,
    /// How long a client may take to send a request's line and headers.
    pub http_header_timeout: Option<DurationText>,
    /// How long a keep-alive connection may sit idle between requests; `0s` turns keep-alive off.
    pub http_keepalive_timeout: Option<DurationText>,
    /// Connections still sending their request headers, at most.
    pub http_max_incomplete: Option<usize>,
    /// Largest request line and headers, in bytes.
    pub http_max_header_bytes: Option<usize>,
    /// Publishes waiting for the history store, at most.
    pub history_queue: Option<usize>,
    /// Connections and Socket.IO sessions that have not authenticated, at most.
    pub max_unauthenticated: Option<usize>,
    /// The same, from one source address.
    pub max_unauthenticated_per_address: Option<usize>,
    /// Proxies (addresses and CIDR ranges) whose `X-Forwarded-For` or `Forwarded` header names
    /// the client.
    pub trusted_proxies: Option<Vec<String>>,
}

/// Parses the file's text, with `file:line:column` in the error.
pub fn parse(file: &str, text: &str) -> Result<ServerFile, String> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |span| crate::locate::line_column(text, span.start));
        format!("{file}:{line}:{column}: {}", e.message())
    })
}
