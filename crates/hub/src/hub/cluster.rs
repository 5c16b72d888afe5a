//! The nodes of one cluster: heartbeats, who is alive, and cluster-wide connection views.
//!
//! Every node sends a heartbeat on each app's `$control` topic every [`HEARTBEAT`], with its
//! connection counts and what its services add (presence sends its version there). A node
//! not heard from for [`NODE_TIMEOUT`] is lost: it leaves the views and services are told,
//! so presence takes its users offline. A node heard from for the first time, or with a new
//! boot number (it restarted), joins. Questions about a user (list their connections,
//! disconnect them) go to every node; the asker gathers the answers of every node it knows
//! alive, waiting at most [`ASK_TIMEOUT`] for them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::Map;
use switchboard_broker::{Broker, BrokerError, Envelope};
use switchboard_protocol::api::ConnectionInfo;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::control::{act_on_user, Act, Control, NodeCounts, Op};
use super::{Hub, Shared};
use crate::metrics::Traffic;
use crate::{App, NodeEvent};

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which a node counts as lost: three missed heartbeats.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a cluster-wide question waits for the other nodes' answers.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Another node, as last heard.
struct Peer {
    boot: u64,
    heard: Instant,
    counts: NodeCounts,
    traffic: Traffic,
}

/// One node's answer to a question: its id, the user's connections there, how many the act
/// touched.
type Answer = (String, Vec<ConnectionInfo>, usize);

/// What this node knows of the others, per app.
pub(crate) struct Cluster {
    peers: Mutex<HashMap<Arc<str>, HashMap<String, Peer>>>,
    asks: Mutex<HashMap<u64, Asker>>,
    next_ask: AtomicU64,
    /// Control messages waiting to go out, in order.
    pub(crate) outgoing: Outgoing,
}

/// A question waiting for the other nodes' answers.
struct Asker {
    /// Bounded by construction: it holds one slot per node in `expected`, and each of those
    /// nodes is let through once.
    answers: mpsc::Sender<Answer>,
    /// The nodes alive when it was asked that have not answered yet.
    expected: HashSet<String>,
}

/// Control messages in at most this number wait for the broker...
const CONTROL_QUEUE: usize = 4096;
/// ... and in at most this many bytes (a message may carry a direct event of up to a
/// connection's queue).
const CONTROL_QUEUE_BYTES: usize = 64 << 20;

/// The queue of control messages to the other nodes, bounded in messages and bytes. At the
/// bound a message is dropped and counted, never waited for: the queue fills only when the
/// broker is slower than heartbeats and presence changes, and the control protocol already
/// survives lost messages (a missed heartbeat is followed by the next, presence versions
/// make a receiver ask for the full list, an unanswered question times out after
/// [`ASK_TIMEOUT`]).
pub(crate) struct Outgoing {
    queue: mpsc::Sender<Envelope>,
    bytes: Arc<AtomicUsize>,
    dropped: AtomicU64,
    /// Whether the last message was dropped, so a full queue is logged once per episode.
    dropping: AtomicBool,
}

impl Outgoing {
    /// Queues `envelope` behind the earlier ones, or drops it when the queue is full.
    pub(crate) fn send(&self, envelope: Envelope) -> Result<(), Envelope> {
        let size = envelope.payload.len();
        // Counted before it is queued: the sending task may take it and count it off at once.
        let before = self.bytes.fetch_add(size, Ordering::Relaxed);
        let sent = match before + size > CONTROL_QUEUE_BYTES {
            true => Err(envelope),
            false => self.queue.try_send(envelope).map_err(|e| e.into_inner()),
        };
        if sent.is_err() {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
        }
        match &sent {
            Ok(()) => {
                if self.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!("the control queue has room again");
                }
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the broker is too slow for control messages: their queue is full ({CONTROL_QUEUE} messages or \
                         {CONTROL_QUEUE_BYTES} bytes), dropping them until it drains"
                    );
                }
            }
        }
        sent
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// A cluster view whose control messages go out through `broker` in order, from a task
    /// started here (when there is a runtime to start it on).
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Envelope>(CONTROL_QUEUE);
        let bytes = Arc::new(AtomicUsize::new(0));
        let sent = bytes.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                while let Some(envelope) = waiting.recv().await {
                    sent.fetch_sub(envelope.payload.len(), Ordering::Relaxed);
                    match broker.publish(envelope).await {
                        // Shutdown closed the broker: the last beats have nowhere to go.
                        Ok(()) | Err(BrokerError::Closed) => {}
                        Err(e) => tracing::warn!(error = %e, "a control message to the other nodes was not sent"),
                    }
                }
            });
        }
        let outgoing = Outgoing { queue, bytes, dropped: AtomicU64::new(0), dropping: AtomicBool::new(false) };
        Self { peers: Mutex::default(), asks: Mutex::default(), next_ask: AtomicU64::new(1), outgoing }
    }

    /// An answer from `node`: passed on once, if the question still waits for that node.
    pub(crate) fn answered(&self, id: u64, node: String, connections: Vec<ConnectionInfo>, count: usize) {
        if let Some(asker) = lock(&self.asks).get_mut(&id) {
            if asker.expected.remove(&node) {
                let _ = asker.answers.try_send((node, connections, count));
            }
        }
    }
}

impl Hub {
    /// Starts this node's heartbeat. It goes on through a drain (the node still holds its
    /// users until it closes their sockets) and stops with the process or the hub.
    pub(crate) fn start_heartbeat(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let shared = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            // After a stall, one tick, not a burst that judges before the queued beats are read.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = Instant::now();
            loop {
                tick.tick().await;
                // A tick this late means this process did not run (frozen, starved): the
                // others' beats are queued unread, so nobody is judged silent this time.
                let woke = last.elapsed() > 2 * HEARTBEAT;
                last = Instant::now();
                let Some(shared) = Weak::upgrade(&shared) else { return };
                Hub { shared }.beat(!woke);
            }
        });
    }

    /// One heartbeat per app, then (with `judge`) the nodes that fell silent are dropped.
    fn beat(&self, judge: bool) {
        for app in self.apps() {
            let mut services = Map::new();
            for service in self.services() {
                if let Some(part) = service.beat(&app) {
                    services.insert(service.name().to_owned(), part);
                }
            }
            let traffic = app.window.tick(&app.metrics, HEARTBEAT);
            self.send_control(&app, Op::Beat { counts: NodeCounts::of(&app), services, traffic });
            if !judge {
                continue;
            }
            let mut lost = Vec::new();
            lock(&self.shared.cluster.peers).entry(app.slug.clone()).or_default().retain(|node, peer| {
                let alive = peer.heard.elapsed() <= NODE_TIMEOUT;
                if !alive {
                    lost.push(node.clone());
                }
                alive
            });
            for node in lost {
                tracing::warn!(app = %app.slug, node, "node lost: no heartbeat for {NODE_TIMEOUT:?}");
                self.tell_services(&app, &node, NodeEvent::Lost);
            }
        }
    }

    /// Notes that `control.node` is alive; tells services of a join (or a restart) and of
    /// the beat's part for them.
    pub(super) fn heard(&self, app: &Arc<App>, control: &Control) {
        let (joined, restarted) = {
            let mut peers = lock(&self.shared.cluster.peers);
            let nodes = peers.entry(app.slug.clone()).or_default();
            let peer = nodes.entry(control.node.clone()).or_insert_with(|| Peer {
                boot: 0,
                heard: Instant::now(),
                counts: NodeCounts::default(),
                traffic: Traffic::default(),
            });
            let (joined, restarted) = (peer.boot != control.boot, peer.boot != 0 && peer.boot != control.boot);
            peer.boot = control.boot;
            peer.heard = Instant::now();
            if let Op::Beat { counts, traffic, .. } = &control.op {
                peer.counts = counts.clone();
                peer.traffic = traffic.clone();
            }
            (joined, restarted)
        };
        if restarted {
            self.tell_services(app, &control.node, NodeEvent::Lost);
        }
        if joined {
            tracing::info!(app = %app.slug, node = %control.node, "node joined");
            self.tell_services(app, &control.node, NodeEvent::Joined);
        }
        if let Op::Beat { services, .. } = &control.op {
            for service in self.services() {
                if let Some(part) = services.get(service.name()) {
                    service.on_node(self, app, &control.node, NodeEvent::Beat(part));
                }
            }
        }
    }

    fn tell_services(&self, app: &Arc<App>, node: &str, event: NodeEvent<'_>) {
        for service in self.services() {
            service.on_node(self, app, node, event);
        }
    }

    /// The other nodes alive for `app`, with their counts.
    pub fn peers(&self, app: &App) -> Vec<(String, NodeCounts)> {
        let peers = lock(&self.shared.cluster.peers);
        let alive = peers.get(&app.slug).into_iter().flatten().filter(|(_, p)| p.heard.elapsed() <= NODE_TIMEOUT);
        let mut out: Vec<_> = alive.map(|(node, p)| (node.clone(), p.counts.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Recent traffic of `app` on every node alive, this one first (each node works its own
    /// out once per heartbeat, over the last ten).
    pub fn traffic(&self, app: &App) -> Vec<(String, Traffic)> {
        let mut nodes = vec![(self.node_id().to_owned(), app.window.latest())];
        let peers = lock(&self.shared.cluster.peers);
        let alive = peers.get(&app.slug).into_iter().flatten().filter(|(_, p)| p.heard.elapsed() <= NODE_TIMEOUT);
        let mut others: Vec<_> = alive.map(|(node, p)| (node.clone(), p.traffic.clone())).collect();
        others.sort_by(|a, b| a.0.cmp(&b.0));
        nodes.extend(others);
        nodes
    }

    /// Does `act` for `user`'s connections on every node, this one first; gathers the user's
    /// connections and how many the act touched from every node alive, waiting at most
    /// [`ASK_TIMEOUT`] for the others.
    pub(crate) async fn ask(&self, app: &App, user: &str, act: Act) -> (Vec<ConnectionInfo>, usize) {
        let mut count = act_on_user(app, user, &act);
        if matches!(act, Act::Join { .. } | Act::Leave { .. }) {
            self.settle().await;
        }
        let mut connections = self.user_connections(app, user);
        let mut waiting: HashSet<String> = self.peers(app).into_iter().map(|(node, _)| node).collect();
        let cluster = &self.shared.cluster;
        let id = cluster.next_ask.fetch_add(1, Ordering::Relaxed);
        let (answers, mut answer) = mpsc::channel(waiting.len().max(1));
        lock(&cluster.asks).insert(id, Asker { answers, expected: waiting.clone() });
        // Logged, then sent even when no other node is known yet: a disconnect must reach
        // them all, and one cut off from the broker now replays it from the log later.
        self.log_control(app, user, &act).await;
        self.send_control(app, Op::Ask { id, user: user.to_owned(), act });
        let deadline = Instant::now() + ASK_TIMEOUT;
        while !waiting.is_empty() {
            let Ok(Some((node, more, touched))) = tokio::time::timeout_at(deadline, answer.recv()).await else { break };
            if waiting.remove(&node) {
                connections.extend(more);
                count += touched;
            }
        }
        lock(&cluster.asks).remove(&id);
        if !waiting.is_empty() {
            tracing::warn!(nodes = ?waiting, "nodes did not answer within {ASK_TIMEOUT:?}; their part is missing");
        }
        (connections, count)
    }

    /// A user's connections on every node.
    pub async fn cluster_connections(&self, app: &App, user: &str) -> Vec<ConnectionInfo> {
        self.ask(app, user, Act::List).await.0
    }

    /// Closes every connection of a user with 4403 on every node; how many closed.
    pub async fn disconnect_user(&self, app: &App, user: &str) -> usize {
        self.ask(app, user, Act::Disconnect).await.1
    }

    /// Control messages to the other nodes dropped since the start: their queue was full.
    pub fn control_messages_dropped(&self) -> u64 {
        self.shared.cluster.outgoing.dropped.load(Ordering::Relaxed)
    }

    /// The ids of the nodes alive for `app`, this one included, sorted.
    pub fn live_nodes(&self, app: &App) -> Vec<String> {
        let mut nodes: Vec<String> = self.peers(app).into_iter().map(|(node, _)| node).collect();
        nodes.push(self.node_id().to_owned());
        nodes.sort();
        nodes
    }
}

impl Shared {
    /// A number that tells this process from an earlier one with the same node id.
    pub(super) fn new_boot() -> u64 {
        rand::random::<u64>() | 1
    }
}
