//! Presence across nodes: each node tells the others when a user becomes present on it
//! (`up`, also on a status change), and when their grace period there ends (`down`). Every
//! message carries the sender's version (its count of presence messages for the app), and
//! its heartbeat carries the version too: a receiver that sees a version it did not expect
//! missed something (its broker connection broke, say) and asks the sender for all of its
//! users (`sync`, answered with `all`). A node that joins (or restarts) is sent `all` by
//! every node, and sends its own.
//!
//! When a node is lost (no heartbeat for `NODE_TIMEOUT`), every node drops its users; the
//! users present nowhere else go offline, announced once, by the live node with the lowest
//! id. So a crashed node's users are offline within `NODE_TIMEOUT` plus one heartbeat (4 s
//! by default), and no node keeps a ghost of them. A node taken for lost that was only
//! frozen or cut off comes back with its users (its `all`): those present nowhere else until
//! then are announced online again by the same node, so no client keeps them offline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use switchboard_hub::{App, Hub, NodeEvent};

use super::{announce_status, went_offline, Key, State, STATUSES};

/// The name presence messages travel under.
pub(crate) const SERVICE: &str = "presence";

/// What this node knows of the other nodes' users, and what it told them.
#[derive(Default)]
pub(super) struct Nodes {
    /// Per (app, node): that node's users.
    views: HashMap<(Arc<str>, String), View>,
    /// Per app: how many presence messages this node sent (its version).
    sent: HashMap<Arc<str>, u64>,
    /// Users this node announced offline because their node was lost, until they are back
    /// (that node comes back with them, or they connect elsewhere): then this node announces
    /// them online, since nobody else knows to. Bounded by [`MAX_ANNOUNCED_OFFLINE`].
    announced_offline: HashSet<Key>,
}

/// Users remembered as announced offline, at most; past it the memory starts again (those
/// users, should they come back unannounced, show offline until their next change).
const MAX_ANNOUNCED_OFFLINE: usize = 100_000;

#[derive(Default)]
struct View {
    version: u64,
    users: HashMap<String, Remote>,
}

/// A user present on another node.
#[derive(Clone, Serialize, Deserialize)]
struct Remote {
    status: String,
    /// The groups to announce to, should that node be lost.
    groups: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "p", rename_all = "snake_case")]
enum Message {
    Up { user: String, status: String, groups: Vec<String>, v: u64 },
    Down { user: String, v: u64 },
    All { users: HashMap<String, Remote>, v: u64 },
    Sync { node: String },
}

fn static_status(status: &str) -> &'static str {
    STATUSES.iter().copied().find(|s| *s == status).unwrap_or("online")
}

impl Nodes {
    /// The user's status on another node, if present on one.
    pub(super) fn status(&self, key: &Key) -> Option<&'static str> {
        let mut present = self.views.iter().filter(|((app, _), _)| *app == key.0);
        present.find_map(|(_, view)| view.users.get(&key.1)).map(|r| static_status(&r.status))
    }

    fn send(&mut self, hub: &Hub, app: &App, message: impl FnOnce(u64) -> Message) {
        let version = self.sent.entry(app.slug.clone()).or_default();
        *version += 1;
        let body = serde_json::to_value(message(*version)).unwrap_or(Value::Null);
        hub.tell_nodes(app, SERVICE, body);
    }

    /// Tells the other nodes the user is present here with `status`.
    pub(super) fn tell_up(&mut self, hub: &Hub, app: &App, user: &str, status: &str, groups: &[String]) {
        let (user, status, groups) = (user.to_owned(), status.to_owned(), groups.to_vec());
        self.send(hub, app, |v| Message::Up { user, status, groups, v });
    }

    /// Tells the other nodes the user's grace period here ended.
    pub(super) fn tell_down(&mut self, hub: &Hub, app: &App, user: &str) {
        let user = user.to_owned();
        self.send(hub, app, |v| Message::Down { user, v });
    }

    /// Notes that `key` is present again; whether this node had announced it offline.
    pub(super) fn back(&mut self, key: &Key) -> bool {
        self.announced_offline.remove(key)
    }

    /// This node's version for `app`, for its heartbeat.
    pub(super) fn version(&self, app: &App) -> u64 {
        self.sent.get(&app.slug).copied().unwrap_or(0)
    }
}

impl State {
    /// Every user present on this node, for a node that asks.
    fn tell_all(&mut self, hub: &Hub, app: &App) {
        let users = self
            .local
            .iter()
            .filter(|((a, _), _)| *a == app.slug)
            .map(|((_, user), e)| (user.clone(), Remote { status: e.status.to_owned(), groups: e.groups.clone() }))
            .collect();
        // `all` states the version rather than adding one: it replaces what the receiver has.
        let v = self.nodes.version(app);
        let body = serde_json::to_value(Message::All { users, v }).unwrap_or(Value::Null);
        hub.tell_nodes(app, SERVICE, body);
    }

    /// Applies news of another node; returns the users to announce.
    pub(super) fn on_node(&mut self, hub: &Hub, app: &App, node: &str, event: NodeEvent<'_>) -> Announce {
        let key = (app.slug.clone(), node.to_owned());
        match event {
            NodeEvent::Joined => self.tell_all(hub, app),
            NodeEvent::Beat(part) => {
                let known = self.nodes.views.get(&key).map_or(0, |v| v.version);
                if part["v"].as_u64() != Some(known) {
                    self.ask_all(hub, app, node);
                }
            }
            NodeEvent::Message(body) => match serde_json::from_value::<Message>(body.clone()) {
                Ok(Message::Sync { node: target }) if target == hub.node_id() => self.tell_all(hub, app),
                Ok(Message::Sync { .. }) => {}
                Ok(Message::All { users, v }) => {
                    return Announce { back: self.replace(app, node, users, v), ..Announce::default() }
                }
                Ok(message) => return Announce { back: self.apply(hub, app, node, message), ..Announce::default() },
                Err(e) => tracing::warn!(node, error = %e, "unreadable presence message"),
            },
            NodeEvent::Lost => return Announce { offline: self.lose(hub, app, node), ..Announce::default() },
        }
        Announce::default()
    }

    /// An `all` from `node`: its users replace what this node knew of it. Returns those this
    /// node had announced offline (that node was taken for lost): they are back.
    fn replace(
        &mut self,
        app: &App,
        node: &str,
        users: HashMap<String, Remote>,
        v: u64,
    ) -> Vec<(String, String, Vec<String>)> {
        let back = users
            .iter()
            .filter(|(user, _)| self.nodes.back(&(app.slug.clone(), (*user).clone())))
            .map(|(user, remote)| (user.clone(), remote.status.clone(), remote.groups.clone()))
            .collect();
        let view = self.nodes.views.entry((app.slug.clone(), node.to_owned())).or_default();
        (view.users, view.version) = (users, v);
        back
    }

    fn ask_all(&mut self, hub: &Hub, app: &App, node: &str) {
        let body = serde_json::to_value(Message::Sync { node: node.to_owned() }).unwrap_or(Value::Null);
        hub.tell_nodes(app, SERVICE, body);
    }

    /// An `up` or `down` from `node`; returns a user this node had announced offline and
    /// who is back.
    fn apply(&mut self, hub: &Hub, app: &App, node: &str, message: Message) -> Vec<(String, String, Vec<String>)> {
        let mut back = Vec::new();
        if let Message::Up { user, status, groups, .. } = &message {
            if self.nodes.back(&(app.slug.clone(), user.clone())) {
                back.push((user.clone(), status.clone(), groups.clone()));
            }
        }
        let view = self.nodes.views.entry((app.slug.clone(), node.to_owned())).or_default();
        let expected = view.version + 1;
        let v = match message {
            Message::Up { user, status, groups, v } => {
                // A status set on one device is every device's status.
                if let Some(entry) = self.local.get_mut(&(app.slug.clone(), user.clone())) {
                    entry.status = static_status(&status);
                }
                view.users.insert(user, Remote { status, groups });
                v
            }
            Message::Down { user, v } => {
                view.users.remove(&user);
                v
            }
            Message::All { .. } | Message::Sync { .. } => return back,
        };
        view.version = v;
        if v != expected {
            self.ask_all(hub, app, node);
        }
        back
    }

    /// Drops a lost node's users; those present nowhere else are offline, and this node
    /// announces them if it is the live node with the lowest id.
    fn lose(&mut self, hub: &Hub, app: &App, node: &str) -> Vec<(String, Vec<String>)> {
        let Some(view) = self.nodes.views.remove(&(app.slug.clone(), node.to_owned())) else { return Vec::new() };
        if !announcer(hub, app, node) {
            return Vec::new();
        }
        let present = |user: &String| {
            let key = (app.slug.clone(), user.clone());
            self.local.contains_key(&key) || self.nodes.status(&key).is_some()
        };
        let offline: Vec<_> =
            view.users.into_iter().filter(|(user, _)| !present(user)).map(|(user, r)| (user, r.groups)).collect();
        let remembered = &mut self.nodes.announced_offline;
        if remembered.len() + offline.len() > MAX_ANNOUNCED_OFFLINE {
            remembered.clear();
        }
        remembered.extend(offline.iter().map(|(user, _)| (app.slug.clone(), user.clone())));
        offline
    }
}

/// Whether this node announces the presence changes that news of `node` brings: the live
/// node with the lowest id other than `node` does, so each is announced once.
fn announcer(hub: &Hub, app: &App, node: &str) -> bool {
    hub.live_nodes(app).into_iter().find(|n| n != node).as_deref() == Some(hub.node_id())
}

/// Users to announce after news of another node.
#[derive(Default)]
pub(super) struct Announce {
    /// Offline: present nowhere once a lost node's users were dropped (with their groups).
    offline: Vec<(String, Vec<String>)>,
    /// Present again: a node taken for lost is back with them (with their status and groups).
    back: Vec<(String, String, Vec<String>)>,
}

impl super::Presence {
    /// Presence's part of this node's heartbeat for `app`.
    pub(crate) fn beat(&self, app: &App) -> Option<Value> {
        app.spec.features.presence.then(|| json!({ "v": self.lock().nodes.version(app) }))
    }

    /// News of another node (see [`switchboard_hub::Service::on_node`]).
    pub(crate) fn on_node(&self, hub: &Hub, app: &Arc<App>, node: &str, event: NodeEvent<'_>) {
        if !app.spec.features.presence {
            return;
        }
        let Announce { offline, back } = self.lock().on_node(hub, app, node, event);
        if offline.is_empty() && back.is_empty() {
            return;
        }
        if !offline.is_empty() {
            tracing::info!(app = %app.slug, node, users = offline.len(), "users of a lost node are offline");
        }
        if !back.is_empty() {
            tracing::info!(app = %app.slug, node, users = back.len(), "a node taken for lost is back: its users are online");
        }
        self.announce(hub, app, Announce { offline, back });
    }
}

impl Announce {
    async fn make(self, hub: &Hub, app: &App) {
        for (user, groups) in self.offline {
            went_offline(hub, app, &user, &groups).await;
        }
        for (user, status, groups) in self.back {
            announce_status(hub, app, &user, &status, &groups, None).await;
        }
    }
}

/// Batches of announcements wait here at most; past it a batch is made at once, beside the
/// queue (and may overtake it).
const ANNOUNCE_QUEUE: usize = 1024;

/// Announcements after news of other nodes, made one batch at a time in the order the news
/// came: a user announced offline and then back must reach clients in that order (made side by
/// side, the offline, which first stores the last-seen time, arrived last).
#[derive(Default)]
pub(super) struct Announcer {
    queue: std::sync::OnceLock<tokio::sync::mpsc::Sender<(Hub, Arc<App>, Announce)>>,
}

impl super::Presence {
    fn announce(&self, hub: &Hub, app: &Arc<App>, announce: Announce) {
        let queue = self.announcer.queue.get_or_init(|| {
            let (queue, mut batches) = tokio::sync::mpsc::channel::<(Hub, Arc<App>, Announce)>(ANNOUNCE_QUEUE);
            tokio::spawn(async move {
                while let Some((hub, app, announce)) = batches.recv().await {
                    announce.make(&hub, &app).await;
                }
            });
            queue
        });
        if let Err(tokio::sync::mpsc::error::TrySendError::Full((hub, app, announce))) =
            queue.try_send((hub.clone(), app.clone(), announce))
        {
            tracing::warn!("presence announcements are behind; making one out of order");
            tokio::spawn(async move { announce.make(&hub, &app).await });
        }
    }
}
