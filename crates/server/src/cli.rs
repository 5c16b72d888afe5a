//! The command line: `serve`, `token`, `check`.

use clap::{Args, Parser, Subcommand};

/// Switchboard: a real-time event hub. App backends publish to users, groups, rooms and
/// channels; browsers receive over WebSocket.
///
/// Start with no arguments for a demo app on 127.0.0.1:8080:
///
///   $ switchboard serve
///
/// Every serve setting can come from a TOML file (--config), an environment variable
/// (shown as [env: ...]) or a flag; flags win over the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true, verbatim_doc_comment)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub. With no manifests, serves the demo app and prints a dev token.
    Serve(ServeArgs),
    /// Mint a token for testing (HS* apps; the demo app reads its secret from the store).
    ///
    /// Example: switchboard token --app demo --user bob --groups family-7 --ttl 2h
    #[command(verbatim_doc_comment)]
    Token(TokenArgs),
    /// Validate manifests as `serve` would, secrets included; lists every error, exits 1 if any.
    ///
    /// Example: switchboard check apps/second_brain.json apps/shop.json
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
    /// Start a new history epoch after restoring a store backup, before the nodes start.
    ///
    /// A restored store hands out seqs that clients already saw with other events; in a new
    /// epoch their saved positions no longer match, so resuming clients are told their
    /// channels could not be recovered instead of silently skipping events.
    ///
    /// Example: switchboard epoch --store postgres://switchboard@db.internal/switchboard
    #[command(verbatim_doc_comment)]
    Epoch(EpochArgs),
}

/// Where the apps and their stored secrets come from: read by `serve` and by `token`.
#[derive(Debug, Args, Default, Clone)]
pub struct AppsArgs {
    /// A TOML config file (see switchboard.example.toml).
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<String>,
    /// An app manifest (JSON); repeat for several apps. None: the built-in demo app.
    #[arg(long = "manifest", env = "SWITCHBOARD_MANIFESTS", value_delimiter = ',', value_name = "FILE")]
    pub manifests: Vec<String>,
    /// Durable store: sqlite://PATH (one node) or postgres://USER:PASSWORD@HOST/DATABASE
    /// (nodes sharing it) [default: sqlite://./switchboard.db].
    #[arg(long, env = "SWITCHBOARD_STORE", value_name = "URL")]
    pub store: Option<String>,
}

/// `switchboard serve`.
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// Manifests, config file and store.
    #[command(flatten)]
    pub apps: AppsArgs,
    /// Address to listen on, e.g. 0.0.0.0:8080 or 127.0.0.1:9000 [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Broker between nodes: memory (one node), redis://HOST:PORT/ or nats://HOST:PORT (several)
    /// [default: memory].
    #[arg(long, env = "SWITCHBOARD_BROKER", value_name = "URL")]
    pub broker: Option<String>,
    /// This node's id, part of every connection id [default: the host name].
    #[arg(long, env = "SWITCHBOARD_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Log format: text or json [default: text]. Level via RUST_LOG (default info).
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// How long /readyz fails before sockets close at shutdown, e.g. 5s [default: 0s].
    #[arg(long, env = "SWITCHBOARD_DRAIN_GRACE", value_name = "DURATION")]
    pub drain_grace: Option<String>,
    /// How long sessions may flush their queues at shutdown [default: 10s].
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", value_name = "DURATION")]
    pub drain_timeout: Option<String>,
    /// A file holding the admin console's token (at /admin); or set SWITCHBOARD_ADMIN_TOKEN.
    /// Without either, the console is off.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN_FILE", value_name = "PATH")]
    pub admin_token_file: Option<String>,
    /// How long a client may take to send a request's line and headers; then the connection
    /// closes [default: 60s].
    #[arg(long, env = "SWITCHBOARD_HTTP_HEADER_TIMEOUT", value_name = "DURATION")]
    pub http_header_timeout: Option<String>,
    /// How long a keep-alive connection may sit idle between requests; 0s turns keep-alive
    /// off [default: 75s].
    #[arg(long, env = "SWITCHBOARD_HTTP_KEEPALIVE_TIMEOUT", value_name = "DURATION")]
    pub http_keepalive_timeout: Option<String>,
    /// Connections still sending their request headers, at most; past it the one that has
    /// waited longest is closed [default: 1024].
    #[arg(long, env = "SWITCHBOARD_HTTP_MAX_INCOMPLETE", value_name = "N")]
    pub http_max_incomplete: Option<usize>,
    /// Largest request line and headers, in bytes; larger answers 431 [default: 32768].
    #[arg(long, env = "SWITCHBOARD_HTTP_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub http_max_header_bytes: Option<usize>,
    /// Publishes waiting for the history store, at most; past it publishes answer 503 with
    /// Retry-After [default: 8192; at least 100, a whole batch].
    #[arg(long, env = "SWITCHBOARD_HISTORY_QUEUE", value_name = "N")]
    pub history_queue: Option<usize>,
    /// Connections and Socket.IO sessions that have not authenticated yet, at most, on this
    /// node; past it upgrades and handshakes answer 503 [default: 10000].
    #[arg(long, env = "SWITCHBOARD_MAX_UNAUTHENTICATED", value_name = "N")]
    pub max_unauthenticated: Option<usize>,
    /// The same, from one source address [default: 1000].
    #[arg(long, env = "SWITCHBOARD_MAX_UNAUTHENTICATED_PER_ADDRESS", value_name = "N")]
    pub max_unauthenticated_per_address: Option<usize>,
    /// Load balancers and proxies in front of this node, comma-separated addresses and CIDR
    /// ranges (10.0.0.0/8,192.0.2.10): from these peers the client's address is read from
    /// X-Forwarded-For (or Forwarded) [default: none, every peer is the client].
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", value_delimiter = ',', value_name = "LIST")]
    pub trusted_proxies: Vec<String>,
}

/// `switchboard token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The app's slug.
    #[arg(long)]
    pub app: String,
    /// The user id (`sub`).
    #[arg(long)]
    pub user: String,
    /// Groups, comma-separated: the user joins `group:{id}` for each.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Channels for the `claim` policy, comma-separated (`ns:*` allowed).
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// The email claim.
    #[arg(long)]
    pub email: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Where the apps come from, as for serve. The demo app's secret is read from the store
    /// that `serve` created (run this where `serve` runs, or pass --store); none is created.
    #[command(flatten)]
    pub apps: AppsArgs,
}

/// `switchboard check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files to validate together.
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<String>,
}

/// `switchboard epoch`.
#[derive(Debug, Args)]
pub struct EpochArgs {
    /// The restored store: sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE.
    #[arg(long, env = "SWITCHBOARD_STORE", value_name = "URL")]
    pub store: String,
    /// Only this app's channels [default: every app's].
    #[arg(long, value_name = "SLUG")]
    pub app: Option<String>,
}
