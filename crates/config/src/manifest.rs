//! The manifest as written: seed 004's shape, extended (docs/MANIFEST.md).
//!
//! Unknown keys at the top level and in `auth_policy` (which app engines share with their
//! own auth settings) are ignored, so an app engine's full manifest loads unchanged; inside
//! Switchboard's own sections (`jwt`, `claims`, endpoints, `channels`, `history`, `limits`,
//! `features`) unknown keys are errors, so typos do not pass silently.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::DurationText;

/// One app's manifest.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// The app's unique name.
    pub slug: String,
    /// How users authenticate.
    #[serde(default)]
    pub auth_policy: Option<AuthPolicy>,
    /// Seed 004's app-wide switch; `auth_policy.required` wins when both are set.
    #[serde(default)]
    pub auth_required: Option<bool>,
    /// The env var holding the server API key (default `{SLUG}_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// A file holding the server API key, instead of an env var.
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// Socket endpoints by name.
    pub websockets: BTreeMap<String, Endpoint>,
    /// Channel namespaces by name.
    #[serde(default)]
    pub channels: BTreeMap<String, Namespace>,
    /// History of `user:` and `group:` channels.
    #[serde(default)]
    pub history: Option<HistorySection>,
    /// Per-connection limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Built-in features.
    #[serde(default)]
    pub features: Features,
    /// What the notification and alert inboxes keep.
    #[serde(default)]
    pub inbox: InboxSection,
    /// Chat settings.
    #[serde(default)]
    pub chat: ChatSection,
    /// Presence settings.
    #[serde(default)]
    pub presence: PresenceSection,
}

/// `auth_policy`.
#[derive(Debug, Deserialize)]
pub struct AuthPolicy {
    /// Whether connections need a token (default true).
    #[serde(default)]
    pub required: Option<bool>,
    /// JWT verification.
    #[serde(default)]
    pub jwt: Option<Jwt>,
    /// Claim names.
    #[serde(default)]
    pub claims: Option<Claims>,
    /// A cookie that may carry the token.
    #[serde(default)]
    pub cookie: Option<String>,
}

/// `auth_policy.jwt`. Secrets are named here, never written here.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// Accepted algorithms (default `["HS256"]`).
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// The env var holding the HS secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the HS secret.
    #[serde(default)]
    pub secret_file: Option<String>,
    /// A PEM public key file for RS256/ES256.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// A JWKS URL.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Required `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    /// Clock skew allowed on `exp`/`nbf` (default 10 s).
    #[serde(default)]
    pub leeway: Option<DurationText>,
    /// Refused with a pointer to `secret_env`: secrets never sit in manifests.
    #[serde(default)]
    pub secret: Option<serde_json::Value>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

/// `auth_policy.claims`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// User id claim (default `sub`).
    pub user_id: Option<String>,
    /// Email claim (default `email`).
    pub email: Option<String>,
    /// Groups claim (default `groups`).
    pub groups: Option<String>,
    /// Channels claim for the `claim` policy (default `channels`).
    pub channels: Option<String>,
    /// Device claim (default `device`).
    pub device: Option<String>,
}

/// `websockets.<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// URL path, e.g. `/ws`.
    pub path: String,
    /// Shown in listings.
    #[serde(default)]
    pub description: Option<String>,
    /// Per-endpoint auth override.
    #[serde(default)]
    pub auth: Option<EndpointAuth>,
    /// Seconds between server pings (default 30).
    #[serde(default)]
    pub ping_interval: Option<DurationText>,
    /// `native` (default), `socket.io`, or a diagnostic one: `echo`, `socket.io-conformance`,
    /// `engine.io-echo`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Origins allowed to connect; `["*"]` for any.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// The app backend's handler for client messages the hub does not own.
    #[serde(default)]
    pub handler_url: Option<String>,
    /// How long the handler may take (default 5 s).
    #[serde(default)]
    pub handler_timeout: Option<DurationText>,
    /// Handler calls in flight at once for this endpoint (default 64).
    #[serde(default)]
    pub handler_concurrency: Option<usize>,
    /// The app backend's connect hook: may refuse a connection or add channels and data.
    #[serde(default)]
    pub connect_url: Option<String>,
    /// permessage-deflate for clients that offer it.
    #[serde(default)]
    pub compression: Option<Compression>,
}

/// `websockets.<name>.compression`: present means on, unless `enabled` is `false`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    /// `false` keeps the settings but turns compression off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Messages shorter than this are sent uncompressed.
    #[serde(default)]
    pub min_bytes: Option<usize>,
    /// zlib level, 1 to 9.
    #[serde(default)]
    pub level: Option<u32>,
    /// Whether the server keeps its deflate window between messages.
    #[serde(default)]
    pub server_context_takeover: Option<bool>,
    /// Whether the client may keep its deflate window between messages.
    #[serde(default)]
    pub client_context_takeover: Option<bool>,
    /// log2 of the server's deflate window, 9 to 15.
    #[serde(default)]
    pub window_bits: Option<u8>,
}

/// `websockets.<name>.auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointAuth {
    /// Whether a token is required.
    #[serde(default)]
    pub required: Option<bool>,
    /// Seed 004's spelling of the opposite of `required`.
    #[serde(default)]
    pub allow_anonymous: Option<bool>,
}

/// `channels.<namespace>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// `public`, `authenticated`, `claim`, `server` or `proxy`.
    pub subscribe: String,
    /// For `proxy`: the app backend's URL that answers whether a user may subscribe.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// History of this namespace's channels.
    #[serde(default)]
    pub history: Option<History>,
}

/// A history window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Events kept per channel.
    #[serde(default)]
    pub size: Option<u32>,
    /// How long events are kept.
    #[serde(default)]
    pub ttl: Option<DurationText>,
    /// `durable` (in the store) or `memory` (this process only).
    #[serde(default)]
    pub storage: Option<String>,
}

/// `history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// `user:` channels.
    #[serde(default)]
    pub user: Option<History>,
    /// `group:` channels.
    #[serde(default)]
    pub group: Option<History>,
}

/// `limits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Sustained client messages per second (default 20).
    pub messages_per_second: Option<u32>,
    /// Burst above the rate (default 50).
    pub burst: Option<u32>,
    /// Largest client frame in bytes (default 65536).
    pub max_message_bytes: Option<usize>,
    /// Connections per user (default 10).
    pub max_connections_per_user: Option<usize>,
    /// Outbound queue per connection in bytes (default 1 MiB).
    pub outbox_max_bytes: Option<usize>,
    /// Time allowed for the in-band auth frame (default 10 s).
    pub auth_timeout: Option<DurationText>,
    /// Channels one connection may be subscribed to (default 128).
    pub max_channels: Option<usize>,
}

/// `features`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Notification inbox.
    pub notifications: Option<bool>,
    /// Alerts.
    pub alerts: Option<bool>,
    /// Chat.
    pub chat: Option<bool>,
    /// Presence.
    pub presence: Option<bool>,
}

/// `inbox`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSection {
    /// Notifications, per user.
    #[serde(default)]
    pub notifications: Option<Keep>,
    /// Alerts, per group.
    #[serde(default)]
    pub alerts: Option<Keep>,
}

/// How long and how many rows of one kind are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// Rows older than this are deleted.
    #[serde(default)]
    pub ttl: Option<DurationText>,
    /// Only the newest this many stay.
    #[serde(default)]
    pub max: Option<u32>,
}

/// `chat`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSection {
    /// Longest message text, in characters (default 4000).
    #[serde(default)]
    pub max_message_chars: Option<usize>,
    /// Silence after which a typist has stopped (default 5 s).
    #[serde(default)]
    pub typing_timeout: Option<DurationText>,
}

/// `presence`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceSection {
    /// How long after the last connection closes a user goes offline (default 5 s).
    #[serde(default)]
    pub offline_grace: Option<DurationText>,
}
