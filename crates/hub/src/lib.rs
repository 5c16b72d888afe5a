//! The hub core: routes events from publishers to the live connections subscribed to them.
//!
//! # Layout
//! - [`Hub`]: the clonable handle every part of the server holds. It owns the apps (each an
//!   [`App`] with its [`AppSpec`] and [`Registry`]), the broker and the store.
//! - [`Registry`]: one app's connections and subscriptions, in 64 shards.
//! - [`Outbox`]: a connection's outbound queue, bounded in bytes; overflow closes with 4008.
//! - [`session::run`]: one connection's life, generic over the transport's frame streams: a
//!   reader task for client frames, and a writer task (`writer.rs`) that drains the outbox.
//!   Client commands live one per file under `cmd/`.
//! - [`policy`]: who may subscribe to what.
//! - [`Service`]: built-in features (the inbox, chat) that answer their own client messages
//!   and publish through the hub.
//!
//! # The life of one publish
//! [`Hub::publish`] validates, claims the idempotency key, encodes the event once per
//! channel and hands each envelope to the broker; channels with history first pass through
//! the sequencer (`history.rs`), which numbers, stores (group commit) and then delivers them. The broker delivers it to every node with
//! subscribers (here: straight back), where [`Registry::deliver`] queues the same bytes in
//! each subscriber's [`Outbox`], and each writer task writes its queue to its socket.

mod clock;
mod cmd;
mod error;
mod frames;
mod gate;
mod handshake;
mod history;
mod hub;
mod inbound;
pub mod metrics;
mod order;
mod outbox;
pub mod policy;
mod proxies;
mod rate;
mod registry;
mod replay;
mod service;
pub mod session;
mod spec;
mod tap;
mod writer;

pub use clock::{rfc3339, unix_ms, unix_us};
pub use error::HubError;
pub use gate::{Gate, GateFull, GateLimits, Waiter};
pub use hub::{
    App, ConnMeta, Hub, NodeCounts, ASK_TIMEOUT, HEARTBEAT, IDEMPOTENCY_TTL, MAX_CHANNELS_PER_PUBLISH,
    MAX_HISTORY_LIMIT, NODE_TIMEOUT,
};
pub use order::Gap;
pub use outbox::{Batch, Closed, Outbox, SentRange};
pub use proxies::{ClientAddr, TrustedProxies};
pub use rate::{RateLimiter, Verdict};
pub use registry::{ConnId, Delivery, Registry, TooManyConnections};
pub use service::{Admission, Caller, NodeEvent, Refusal, Service};
pub use session::{Handshake, Inbound, Outbound};
pub use spec::{
    AppSpec, BuiltinHistory, ChatSpec, CompressionSpec, EndpointSpec, Features, HandlerSpec, HistorySpec, InboxSpec,
    Limits, NamespaceSpec, Policy, Protocol,
};
pub use switchboard_store::Retention;
