//! The [`Hub`] handle: apps, publishing, members and connection queries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use serde_json::Value;
use switchboard_broker::{Broker, Deliver, Envelope};
use switchboard_protocol::api::ConnectionInfo;
use switchboard_protocol::Channel;
use switchboard_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history::{MemoryHistory, Sequencer};
use crate::metrics::{AppMetrics, NodeMetrics, Window};
use crate::{clock, policy, AppSpec, HubError, Registry, Service};

mod cluster;
mod control;
mod direct;
mod fill;
mod health;
mod publish;
mod recover;

pub use cluster::{ASK_TIMEOUT, HEARTBEAT, NODE_TIMEOUT};
pub use control::NodeCounts;
pub use publish::{IDEMPOTENCY_TTL, MAX_CHANNELS_PER_PUBLISH, MAX_HISTORY_LIMIT};

/// One app at run time: its spec and its live connections.
pub struct App {
    /// The validated manifest.
    pub spec: AppSpec,
    /// Its connections and subscriptions.
    pub registry: Registry,
    /// The slug, shared by every envelope.
    pub slug: Arc<str>,
    /// What this node counted and timed for the app.
    pub metrics: Arc<AppMetrics>,
    /// Recent samples of `metrics`, for [`Hub::traffic`].
    pub(crate) window: Window,
}

/// A live connection's metadata (seed 004's fields plus where it came from).
#[derive(Debug)]
pub struct ConnMeta {
    /// Process-unique number, the registry key.
    pub id: crate::ConnId,
    /// The public id, unique across nodes.
    pub connection_id: String,
    /// The app's slug.
    pub app_slug: Arc<str>,
    /// The token's user; `None` when anonymous.
    pub user_id: Option<String>,
    /// The token's email.
    pub user_email: Option<String>,
    /// The token's groups: these memberships cannot be removed by the members API.
    pub groups: Vec<String>,
    /// Unix milliseconds of authentication.
    pub connected_at_ms: u64,
    /// The endpoint's manifest name.
    pub endpoint: String,
    /// The endpoint's protocol name.
    pub protocol: &'static str,
    /// The peer address.
    pub remote_addr: String,
    /// The device, for acknowledgements.
    pub device: Option<String>,
}

impl ConnMeta {
    /// The API view of this connection.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            connection_id: self.connection_id.clone(),
            app_slug: self.app_slug.to_string(),
            user_id: self.user_id.clone(),
            user_email: self.user_email.clone(),
            connected_at: clock::rfc3339(self.connected_at_ms),
            endpoint: self.endpoint.clone(),
            protocol: self.protocol.to_owned(),
            remote_addr: self.remote_addr.clone(),
            device: self.device.clone(),
        }
    }
}

/// The hub: a cheap, clonable handle over shared state.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    apps: HashMap<String, Arc<App>>,
    broker: Arc<dyn Broker>,
    store: Arc<dyn Store>,
    node_id: String,
    /// Tells this process from an earlier one with the same node id.
    boot: u64,
    /// What this node knows of the others.
    cluster: cluster::Cluster,
    next_conn: AtomicU64,
    ready: AtomicBool,
    shutdown: CancellationToken,
    sessions: TaskTracker,
    /// Numbers, stores and delivers events of channels with history.
    sequencer: Sequencer,
    /// History kept in memory, for namespaces that ask for it.
    memory: Arc<MemoryHistory>,
    /// Built-in features that answer client messages.
    services: Vec<Arc<dyn Service>>,
    /// Copies of what this node publishes, for watchers.
    tap: Arc<crate::tap::TapBroker>,
    /// Broker and store timings.
    metrics: Arc<NodeMetrics>,
    /// Connections waiting to authenticate.
    gate: Arc<crate::gate::Gate>,
    /// Whether the broker and the store answer.
    health: health::Health,
}

/// Routes envelopes from the broker into local outboxes. Holds the hub weakly, because the
/// broker is owned by the hub.
struct Inbound(Weak<Shared>);

impl Deliver for Inbound {
    fn deliver(&self, envelope: Envelope) {
        if let Some(shared) = self.0.upgrade() {
            if let Some(app) = shared.apps.get(&*envelope.app) {
                if &*envelope.channel == control::CONTROL {
                    return Hub { shared: shared.clone() }.on_control(app, &envelope.payload);
                }
                match app.registry.deliver(&envelope) {
                    crate::Delivery::Queued(0) => {}
                    crate::Delivery::Queued(n) => {
                        app.metrics.delivered.fetch_add(n as u64, Ordering::Relaxed);
                        if envelope.published_us > 0 {
                            app.metrics.delivery.observe_us(clock::unix_us().saturating_sub(envelope.published_us));
                        }
                    }
                    crate::Delivery::Gap(gap) => Hub { shared: shared.clone() }.fill_gap(app.clone(), gap),
                }
            }
        }
    }

    fn reconnected(&self) {
        if let Some(shared) = self.0.upgrade() {
            Hub { shared }.on_reconnected();
        }
    }
}

impl Hub {
    /// A hub serving `apps`, attached to `broker`, keeping durable state in `store`, with
    /// `services` answering the client messages they own.
    pub fn new(
        apps: Vec<AppSpec>,
        broker: Arc<dyn Broker>,
        store: Arc<dyn Store>,
        node_id: String,
        services: Vec<Arc<dyn Service>>,
    ) -> Self {
        let metrics = Arc::new(NodeMetrics::default());
        let app_metrics: HashMap<Arc<str>, Arc<AppMetrics>> =
            apps.iter().map(|spec| (spec.slug.as_str().into(), Arc::default())).collect();
        let tap = Arc::new(crate::tap::TapBroker::new(broker, app_metrics.clone(), metrics.clone()));
        let broker: Arc<dyn Broker> = tap.clone();
        let apps = apps
            .into_iter()
            .map(|spec| {
                let slug: Arc<str> = spec.slug.as_str().into();
                let registry = Registry::new(slug.clone(), broker.clone());
                let (metrics, window) = (app_metrics[&slug].clone(), Window::default());
                (spec.slug.clone(), Arc::new(App { spec, registry, slug, metrics, window }))
            })
            .collect();
        let memory = Arc::new(MemoryHistory::default());
        let shared = Arc::new(Shared {
            apps,
            broker: broker.clone(),
            store: store.clone(),
            node_id,
            boot: Shared::new_boot(),
            cluster: cluster::Cluster::new(broker.clone()),
            next_conn: AtomicU64::new(1),
            ready: AtomicBool::new(true),
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            sequencer: Sequencer::new(store.clone(), broker.clone(), memory.clone(), metrics.clone()),
            memory,
            services,
            tap,
            metrics,
            gate: Arc::new(crate::gate::Gate::new(crate::gate::GateLimits::default())),
            health: health::Health::default(),
        });
        broker.attach(Arc::new(Inbound(Arc::downgrade(&shared))));
        let hub = Self { shared };
        hub.listen_for_control();
        hub.start_heartbeat();
        hub.start_health_checks();
        hub
    }

    /// The waiting room of connections that have not authenticated yet.
    pub fn gate(&self) -> &Arc<crate::gate::Gate> {
        &self.shared.gate
    }

    /// An app by slug.
    pub fn app(&self, slug: &str) -> Option<Arc<App>> {
        self.shared.apps.get(slug).cloned()
    }

    /// Every app, sorted by slug.
    pub fn apps(&self) -> Vec<Arc<App>> {
        let mut apps: Vec<_> = self.shared.apps.values().cloned().collect();
        apps.sort_by(|a, b| a.slug.cmp(&b.slug));
        apps
    }

    /// Every event this node publishes from now on (for a live tail). A watcher that falls
    /// more than 1024 events behind loses the oldest.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<Envelope> {
        self.shared.tap.watch()
    }

    /// This node's broker and store timings.
    pub fn node_metrics(&self) -> &NodeMetrics {
        &self.shared.metrics
    }

    /// The durable store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Waits until the broker applied every interest change so far: after it, publishes
    /// from any node reach the subscriptions made.
    pub async fn settle(&self) {
        self.shared.broker.settle().await;
    }

    /// Every service, to tell of connections coming and going.
    pub(crate) fn services(&self) -> &[Arc<dyn Service>] {
        &self.shared.services
    }

    /// The service that answers `kind` from `caller`, if one does (the first that owns it).
    pub(crate) fn service_for(&self, caller: &crate::Caller, kind: &str) -> Option<Arc<dyn Service>> {
        self.shared.services.iter().find(|s| s.owns(caller, kind)).cloned()
    }

    /// History kept in memory.
    pub(crate) fn memory(&self) -> &MemoryHistory {
        &self.shared.memory
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// A new process-unique connection number and its public id.
    pub(crate) fn next_connection(&self) -> (crate::ConnId, String) {
        let n = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}-{}", self.shared.node_id, uuid::Uuid::now_v7().simple()))
    }

    /// Cancelled when shutdown begins; sessions then drain and close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Where every session task is tracked, so shutdown can wait for them.
    pub fn sessions(&self) -> &TaskTracker {
        &self.shared.sessions
    }

    /// Whether /readyz should pass.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire) && !self.shared.shutdown.is_cancelled()
    }

    /// Fails /readyz; the first step of shutdown.
    pub fn mark_unready(&self) {
        self.shared.ready.store(false, Ordering::Release);
    }

    /// Closes the broker and the store; the last step of shutdown.
    pub async fn close_backends(&self) {
        if let Err(e) = self.shared.broker.close().await {
            tracing::warn!(error = %e, "broker close failed");
        }
        self.shared.store.close().await;
    }

    /// Adds a user to a channel and subscribes the user's live connections on every node at
    /// once: when this returns, publishes to the channel reach them.
    pub async fn add_member(&self, app: &App, channel: &str, user: &str) -> Result<bool, HubError> {
        member_channel(app, channel)?;
        let added = self.shared.store.add_member(&app.spec.slug, channel, user).await?;
        let head = self.head(app, channel).await;
        self.ask(app, user, control::Act::Join { channel: channel.to_owned(), head }).await;
        Ok(added)
    }

    /// Removes a user from a channel and unsubscribes the user's live connections on every
    /// node at once (except where the token's groups grant the channel).
    pub async fn remove_member(&self, app: &App, channel: &str, user: &str) -> Result<bool, HubError> {
        member_channel(app, channel)?;
        let removed = self.shared.store.remove_member(&app.spec.slug, channel, user).await?;
        self.ask(app, user, control::Act::Leave { channel: channel.to_owned() }).await;
        Ok(removed)
    }

    /// The server-managed members of a channel.
    pub async fn members(&self, app: &App, channel: &str) -> Result<Vec<String>, HubError> {
        member_channel(app, channel)?;
        Ok(self.shared.store.members(&app.spec.slug, channel).await?)
    }

    /// The live connections of one user.
    pub fn user_connections(&self, app: &App, user: &str) -> Vec<ConnectionInfo> {
        let ids = app.registry.user_connections(user);
        ids.into_iter().filter_map(|id| app.registry.get(id)).map(|(meta, _)| meta.info()).collect()
    }

    /// Connection totals of one app on this node.
    pub fn node_counts(&self, app: &App) -> NodeCounts {
        NodeCounts::of(app)
    }

    /// Connection totals of one app on every node alive: the sums, and each node's.
    pub fn connection_counts(&self, app: &App) -> Value {
        let own = NodeCounts::of(app);
        let mut sum = own.clone();
        let mut nodes = vec![serde_json::json!({ "node_id": self.node_id(), "counts": own })];
        for (node, counts) in self.peers(app) {
            sum.add(&counts);
            nodes.push(serde_json::json!({ "node_id": node, "counts": counts }));
        }
        serde_json::json!({
            "total": sum.total,
            "users": sum.users,
            "anonymous": sum.anonymous,
            "by_endpoint": sum.by_endpoint,
            "node_id": self.shared.node_id,
            "nodes": nodes,
        })
    }
}

/// Members make sense for groups, rooms and custom channels, not for users or broadcast.
fn member_channel(app: &App, channel: &str) -> Result<(), HubError> {
    let parsed = policy::check_name(&app.spec, channel).map_err(HubError::BadRequest)?;
    match parsed {
        Channel::User(_) | Channel::Broadcast => Err(HubError::BadRequest(format!(
            "channel `{channel}` has no members: user and broadcast channels are automatic"
        ))),
        _ => Ok(()),
    }
}
