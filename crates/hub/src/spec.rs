//! What the hub needs to know about each app: the validated form of a manifest.
//!
//! The config crate builds these from manifest files; tests and embedders build them in code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_auth::{ApiKeys, Verifier};
use switchboard_store::Retention;

/// One app, fully resolved (secrets loaded, defaults applied).
pub struct AppSpec {
    /// The app's slug, unique on this server.
    pub slug: String,
    /// Verifies users' tokens; `None` when the app declares no JWT key.
    pub verifier: Option<Arc<Verifier>>,
    /// Keys for the server API.
    pub api_keys: ApiKeys,
    /// The cookie that may carry a token.
    pub cookie: Option<String>,
    /// The app's socket endpoints.
    pub endpoints: Vec<Arc<EndpointSpec>>,
    /// Channel namespaces by name, including `room`.
    pub namespaces: HashMap<String, NamespaceSpec>,
    /// History of `user:` and `group:` channels (durable by default).
    pub history: BuiltinHistory,
    /// Per-connection limits.
    pub limits: Limits,
    /// Built-in features the app uses.
    pub features: Features,
    /// What the app's notification and alert inboxes keep.
    pub inbox: InboxSpec,
    /// Chat and presence settings.
    pub chat: ChatSpec,
}

impl AppSpec {
    /// How `channel` keeps history, if it does: `user:` and `group:` by the app's `history`
    /// section, `room:` and custom channels by their namespace, `broadcast` never.
    pub fn history_of(&self, channel: &str) -> Option<HistorySpec> {
        let namespace = match switchboard_protocol::Channel::parse(channel).ok()? {
            switchboard_protocol::Channel::User(_) => return self.history.user,
            switchboard_protocol::Channel::Group(_) => return self.history.group,
            switchboard_protocol::Channel::Broadcast => return None,
            switchboard_protocol::Channel::Room(_) => "room",
            switchboard_protocol::Channel::Custom { namespace, .. } => namespace,
        };
        self.namespaces.get(namespace)?.history
    }
}

/// How one kind of channel keeps its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    /// Events kept per channel; older ones are dropped.
    pub size: u32,
    /// How long an event is kept.
    pub ttl: Duration,
    /// In the store (survives restarts) or in this process's memory (a restart starts a new
    /// epoch).
    pub durable: bool,
}

impl HistorySpec {
    /// What `user:` and `group:` channels keep unless the manifest says otherwise.
    pub const DEFAULT_DURABLE: Self = Self { size: 1000, ttl: Duration::from_secs(24 * 3600), durable: true };
}

/// History of the built-in per-user and per-group channels; `None` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinHistory {
    /// `user:{id}` channels.
    pub user: Option<HistorySpec>,
    /// `group:{id}` channels.
    pub group: Option<HistorySpec>,
}

impl Default for BuiltinHistory {
    fn default() -> Self {
        Self { user: Some(HistorySpec::DEFAULT_DURABLE), group: Some(HistorySpec::DEFAULT_DURABLE) }
    }
}

/// The wire protocol of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// JSON text frames, as in docs/PROTOCOL.md.
    Native,
    /// Engine.IO v4 / Socket.IO v5, for unchanged socket.io-client front ends.
    SocketIo,
    /// Diagnostic: echoes every frame back; for the RFC 6455 conformance suite only.
    Echo,
    /// Diagnostic: the behaviour the Socket.IO protocol test suite expects; no hub.
    SocketIoConformance,
    /// Diagnostic: Engine.IO only, echoing every message; for the Engine.IO test suite.
    EngineIoEcho,
}

impl Protocol {
    /// The name used in manifests and connection listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::SocketIo => "socket.io",
            Self::Echo => "echo",
            Self::SocketIoConformance => "socket.io-conformance",
            Self::EngineIoEcho => "engine.io-echo",
        }
    }
}

/// One socket path of an app.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// The manifest key (`realtime`).
    pub name: String,
    /// The URL path (`/ws`).
    pub path: String,
    /// The wire protocol.
    pub protocol: Protocol,
    /// Whether a token is required; without one the connection is anonymous.
    pub auth_required: bool,
    /// How often the server pings; a peer that misses two pongs is dropped.
    pub ping_interval: Duration,
    /// What the endpoint is for, shown in listings.
    pub description: Option<String>,
    /// Origins allowed to open a socket; `None` allows any, unless a cookie carries auth.
    pub allowed_origins: Option<Vec<String>>,
    /// Where client messages the hub does not own go (seed 004's message handlers).
    pub handler: Option<HandlerSpec>,
    /// The backend's connect hook, asked before `connected`.
    pub connect_url: Option<String>,
    /// permessage-deflate (RFC 7692) for clients that offer it; `None` leaves it off.
    pub compression: Option<CompressionSpec>,
}

/// How an endpoint compresses WebSocket messages once a client has offered permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSpec {
    /// Messages shorter than this leave uncompressed: deflate's framing would outweigh the saving.
    pub min_bytes: usize,
    /// zlib level, 1 (fastest) to 9 (smallest).
    pub level: u32,
    /// The server keeps its deflate state between messages: a better ratio, but every
    /// connection holds a state of about 300 KB. Off, states come from a shared pool.
    pub server_context_takeover: bool,
    /// The client may keep its window between messages (the server then keeps an inflate
    /// state per connection that has sent a compressed message).
    pub client_context_takeover: bool,
    /// log2 of the server's deflate window, 9 to 15: smaller saves memory per connection.
    pub window_bits: u8,
}

impl Default for CompressionSpec {
    fn default() -> Self {
        Self {
            min_bytes: 256,
            level: 1,
            server_context_takeover: false,
            client_context_takeover: false,
            window_bits: 15,
        }
    }
}

/// Who may subscribe to a namespace's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, anonymous connections included.
    Public,
    /// Any authenticated user.
    Authenticated,
    /// Users whose token's channels claim lists the channel (or `ns:*`).
    Claim,
    /// Only the server API (members), never the client.
    Server,
    /// Ask the app backend (needs the subscribe proxy).
    Proxy,
}

/// A channel namespace declared in the manifest.
#[derive(Debug, Clone)]
pub struct NamespaceSpec {
    /// Who may subscribe.
    pub subscribe: Policy,
    /// History of the namespace's channels; `None` keeps none.
    pub history: Option<HistorySpec>,
    /// For [`Policy::Proxy`]: the backend URL that decides.
    pub proxy_url: Option<String>,
}

/// Per-connection limits. Every default is safe.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Sustained client messages per second.
    pub messages_per_second: u32,
    /// Messages allowed in a burst above the rate.
    pub burst: u32,
    /// Largest client frame; larger closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Connections one user may hold at once in this app.
    pub max_connections_per_user: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer (4008).
    pub outbox_max_bytes: usize,
    /// How long a connection without a token may take to send its `auth` frame (4408).
    pub auth_timeout: Duration,
    /// Channels one connection may be subscribed to; a `subscribe` past it is refused.
    pub max_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            messages_per_second: 20,
            burst: 50,
            max_message_bytes: 65_536,
            max_connections_per_user: 10,
            outbox_max_bytes: 1 << 20,
            auth_timeout: Duration::from_secs(10),
            max_channels: 128,
        }
    }
}

impl Limits {
    /// Levels of arrays and objects one JSON document may nest, itself included, as
    /// serde_json reads it: client frames and request bodies are held to this.
    pub const MAX_JSON_DEPTH: usize = 127;
    /// Levels event `data` (and a notification's or alert's) may nest. Deeper data is
    /// refused before it is stored or sent: a million nested arrays crash browsers' and
    /// Python's parsers. It is well inside [`Self::MAX_JSON_DEPTH`] because data travels
    /// wrapped: in its event, in a history page, in a notification and its list, so whatever
    /// carries it stays readable by a parser with serde_json's limit.
    pub const MAX_DATA_DEPTH: usize = 100;

    /// Refuses JSON text nested deeper than [`Self::MAX_DATA_DEPTH`], naming `field`.
    pub fn check_data_depth(field: &str, json: &str) -> Result<(), String> {
        match nested_deeper_than(json, Self::MAX_DATA_DEPTH) {
            true => Err(Self::too_deep(field)),
            false => Ok(()),
        }
    }

    /// Refuses a parsed value nested deeper than [`Self::MAX_DATA_DEPTH`], naming `field`.
    pub fn check_value_depth(field: &str, value: &serde_json::Value) -> Result<(), String> {
        match depth(value) > Self::MAX_DATA_DEPTH {
            true => Err(Self::too_deep(field)),
            false => Ok(()),
        }
    }

    /// The refusal of `field` for nesting too deeply.
    pub fn too_deep(field: &str) -> String {
        format!(
            "field `{field}`: nested more than {} arrays and objects deep; data may nest at most {0}, so that \
             the events and answers that carry it stay within the {} levels a JSON document may have",
            Self::MAX_DATA_DEPTH,
            Self::MAX_JSON_DEPTH
        )
    }
}

/// How many arrays and objects `value` nests (a parsed value: serde_json built it within
/// its own limit, so the recursion is shallow).
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether JSON `text` (already valid) opens more than `max` arrays and objects inside one
/// another. A scan, not a parse: no recursion, no allocation, stops at the first level over.
fn nested_deeper_than(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The built-in features an app turned on (`features` in the manifest; all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The notification inbox.
    pub notifications: bool,
    /// Group alerts.
    pub alerts: bool,
    /// Chat.
    pub chat: bool,
    /// Presence.
    pub presence: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self { notifications: true, alerts: true, chat: true, presence: true }
    }
}

/// How long and how many notifications and alerts an app keeps (`inbox` in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxSpec {
    /// Per user.
    pub notifications: Retention,
    /// Per group.
    pub alerts: Retention,
}

impl Default for InboxSpec {
    fn default() -> Self {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        Self {
            notifications: Retention { max_age: days(30), max_count: 1000 },
            alerts: Retention { max_age: days(30), max_count: 500 },
        }
    }
}

/// Chat and presence settings (`chat` and `presence` in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatSpec {
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// A typist who sends nothing for this long has stopped typing.
    pub typing_timeout: Duration,
    /// How long after a user's last connection closes they go offline (so a page reload
    /// does not flap).
    pub offline_grace: Duration,
}

impl Default for ChatSpec {
    fn default() -> Self {
        Self { max_message_chars: 4000, typing_timeout: Duration::from_secs(5), offline_grace: Duration::from_secs(5) }
    }
}

/// An endpoint's handler webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerSpec {
    /// The backend URL that receives each message.
    pub url: String,
    /// How long one call may take before the client gets `handler_failed`.
    pub timeout: Duration,
    /// Calls in flight at once for this endpoint; more wait for a free slot within `timeout`.
    pub concurrency: usize,
}

#[cfg(test)]
mod tests {
    use super::{nested_deeper_than, Limits};

    fn deep(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!nested_deeper_than(r#"{"a":[1,{"b":[]}]}"#, 4));
        assert!(nested_deeper_than(r#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!nested_deeper_than(r#"["[[[[", "\"{{{{", "\\"]"#, 1));
        assert!(!nested_deeper_than(r#""[[[""#, 0));
        assert!(Limits::check_data_depth("data", &deep(Limits::MAX_DATA_DEPTH)).is_ok());
        let refused = Limits::check_data_depth("data", &deep(Limits::MAX_DATA_DEPTH + 1)).unwrap_err();
        assert!(refused.starts_with("field `data`: nested more than 100"), "{refused}");
        let value: serde_json::Value = serde_json::from_str(&deep(Limits::MAX_DATA_DEPTH)).unwrap();
        assert!(Limits::check_value_depth("data", &value).is_ok());
        let value: serde_json::Value = serde_json::from_str(&deep(Limits::MAX_DATA_DEPTH + 1)).unwrap();
        assert!(Limits::check_value_depth("data", &value).is_err());
    }

    #[test]
    fn the_deepest_data_stays_readable_in_what_carries_it() {
        // A notification in a history page: the deepest wrapping data gets.
        let data = deep(Limits::MAX_DATA_DEPTH);
        let page = format!(r#"{{"events":[{{"type":"notification:new","data":{{"data":{data}}}}}]}}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&page).is_ok());
        // And serde_json's limit is the one MAX_JSON_DEPTH states.
        assert!(serde_json::from_str::<serde_json::Value>(&deep(Limits::MAX_JSON_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(Limits::MAX_JSON_DEPTH + 1)).is_err());
    }
}
