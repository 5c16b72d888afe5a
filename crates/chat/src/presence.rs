//! Presence: a user is online from their first connection on any node, and offline
//! `presence.offline_grace` (5 s) after their last one closes, so a page reload does not
//! flap. `presence:set` makes them `away` or `busy`. Each change is signalled (live only) to
//! the user's groups as `presence:{status}`, and to everyone who shares a conversation with
//! them as `presence:{status}` and `chat:presence`. The last-seen time is stored when they go
//! offline.
//!
//! Each node tracks its own connections here and learns the other nodes' users from them
//! (`presence/sync.rs`). A change is announced by the node where it happens, and only when
//! it changes the cluster's answer: a user still present on another node does not go
//! offline when this node's last connection closes.

mod sync;

pub(crate) use sync::SERVICE;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use switchboard_hub::{rfc3339, unix_ms, App, ConnMeta, Hub};

use crate::{signal, view, Chat, ChatError};

/// The statuses a user may set.
const STATUSES: [&str; 3] = ["online", "away", "busy"];

/// One user of one app: (app, user).
type Key = (Arc<str>, String);

/// Who is present, on this node and on the others.
#[derive(Default, Clone)]
pub struct Presence {
    state: Arc<Mutex<State>>,
    announcer: Arc<sync::Announcer>,
}

#[derive(Default)]
struct State {
    /// This node's users.
    local: HashMap<Key, Entry>,
    /// The other nodes' users (see `sync.rs`).
    nodes: sync::Nodes,
}

struct Entry {
    connections: usize,
    status: &'static str,
    /// Changes whenever a connection comes or goes, so a stale offline timer knows it.
    generation: u64,
    /// Where to announce: the groups of the user's connections.
    groups: Vec<String>,
}

impl State {
    /// The user's status anywhere in the cluster; `None` when offline everywhere.
    fn status(&self, key: &Key) -> Option<&'static str> {
        self.local.get(key).map(|e| e.status).or_else(|| self.nodes.status(key))
    }
}

impl Presence {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `online`, `away` or `busy` while the user is connected to any node (or within the
    /// grace period); `None` when offline.
    pub fn status(&self, app: &str, user: &str) -> Option<&'static str> {
        self.lock().status(&(Arc::from(app), user.to_owned()))
    }
}

impl Chat {
    /// A connection opened: the user's first in the cluster makes them online.
    pub(crate) async fn connected(&self, hub: &Hub, app: &App, meta: &ConnMeta) {
        let Some(user) = meta.user_id.clone() else { return };
        // The connection's groups: its token's and its server-managed ones, as subscribed.
        let channels = app.registry.channels(meta.id);
        let groups = channels.iter().filter_map(|c| c.strip_prefix("group:")).map(str::to_owned);
        let key = (app.slug.clone(), user.clone());
        let announce = {
            let mut state = self.presence.lock();
            // Present on another node already: keep the status set there.
            let elsewhere = state.nodes.status(&key);
            let entry = state.local.entry(key.clone()).or_insert_with(|| Entry {
                connections: 0,
                status: "",
                generation: 0,
                groups: Vec::new(),
            });
            entry.connections += 1;
            entry.generation += 1;
            entry.groups.extend(groups);
            entry.groups.sort();
            entry.groups.dedup();
            let new = entry.status.is_empty();
            if new {
                entry.status = elsewhere.unwrap_or("online");
            }
            let (status, groups) = (entry.status, entry.groups.clone());
            if new {
                state.nodes.tell_up(hub, app, &user, status, &groups);
            }
            // This node announced them offline when their node was lost: announce them back.
            let back = state.nodes.back(&key);
            (new && (elsewhere.is_none() || back)).then_some(groups)
        };
        if let Some(groups) = announce {
            announce_status(hub, app, &user, "online", &groups, None).await;
        }
    }

    /// A connection closed: after the grace period without a new one, on this node or
    /// another, the user is offline.
    pub(crate) fn disconnected(&self, hub: &Hub, app: &Arc<App>, meta: &ConnMeta) {
        let Some(user) = meta.user_id.clone() else { return };
        let key = (app.slug.clone(), user);
        let generation = {
            let mut state = self.presence.lock();
            let Some(entry) = state.local.get_mut(&key) else { return };
            entry.connections = entry.connections.saturating_sub(1);
            entry.generation += 1;
            if entry.connections > 0 {
                return;
            }
            entry.generation
        };
        let (presence, hub, app) = (self.presence.clone(), hub.clone(), app.clone());
        tokio::spawn(async move {
            tokio::time::sleep(app.spec.chat.offline_grace).await;
            let gone = {
                let mut state = presence.lock();
                let gone = match state.local.get(&key) {
                    Some(e) if e.connections == 0 && e.generation == generation => state.local.remove(&key),
                    _ => None,
                };
                if gone.is_some() {
                    state.nodes.tell_down(&hub, &app, &key.1);
                }
                gone.filter(|_| state.nodes.status(&key).is_none())
            };
            if let Some(entry) = gone {
                went_offline(&hub, &app, &key.1, &entry.groups).await;
            }
        });
    }

    /// `presence:set {status}`: online, away or busy, for all of the user's devices.
    pub async fn set_status(&self, hub: &Hub, app: &App, user: &str, status: &str) -> Result<Value, ChatError> {
        let Some(status) = STATUSES.iter().copied().find(|s| *s == status) else {
            return Err(ChatError::BadRequest(format!("field `data.status`: `{status}` is not one of {STATUSES:?}")));
        };
        let groups = {
            let mut state = self.presence.lock();
            let entry = state.local.get_mut(&(app.slug.clone(), user.to_owned()));
            let entry = entry.ok_or_else(|| ChatError::Forbidden("only a connected user has a presence".into()))?;
            entry.status = status;
            let groups = entry.groups.clone();
            state.nodes.tell_up(hub, app, user, status, &groups);
            groups
        };
        announce_status(hub, app, user, status, &groups, None).await;
        Ok(json!({ "userKey": user, "status": status }))
    }

    /// `GET /presence?users=`: each user's status in the cluster, connections on this node
    /// and last-seen time.
    pub async fn presence_of(&self, hub: &Hub, app: &App, users: &[String]) -> Result<Value, ChatError> {
        let seen: HashMap<String, u64> = hub.store().last_seen(&app.spec.slug, users).await?.into_iter().collect();
        let mut out = Map::new();
        for user in users {
            let status = self.presence.status(&app.spec.slug, user);
            let last_seen = if status.is_some() { None } else { seen.get(user).map(|at| rfc3339(*at)) };
            let connections = app.registry.user_connections(user).len();
            let entry =
                json!({ "status": status.unwrap_or("offline"), "connections": connections, "last_seen": last_seen });
            out.insert(user.clone(), entry);
        }
        Ok(json!({ "presence": out }))
    }

    /// `GET /channels/{channel}/presence`: the users with a connection on the channel.
    pub fn channel_presence(&self, app: &App, channel: &str) -> Value {
        let users: Vec<Value> = app
            .registry
            .channel_users(channel)
            .into_iter()
            .map(|user| {
                let status = self.presence.status(&app.spec.slug, &user).unwrap_or("online");
                json!({ "user": user, "status": status })
            })
            .collect();
        json!({ "channel": channel, "users": users })
    }
}

/// Stores the last-seen time and announces `offline`.
async fn went_offline(hub: &Hub, app: &App, user: &str, groups: &[String]) {
    let now = unix_ms();
    if let Err(e) = hub.store().set_last_seen(&app.spec.slug, user, now).await {
        tracing::warn!(error = %e, "could not store a last-seen time");
    }
    announce_status(hub, app, user, "offline", groups, Some(now)).await;
}

/// Signals a status change to the user's groups and conversation partners.
async fn announce_status(hub: &Hub, app: &App, user: &str, status: &str, groups: &[String], seen: Option<u64>) {
    let kind = match status {
        "away" => "presence:away",
        "busy" => "presence:busy",
        "offline" => "presence:offline",
        _ => "presence:online",
    };
    let data = json!({ "userKey": user, "status": status, "timestamp": view::now(), "lastSeen": seen.map(rfc3339) });
    for group in groups {
        if let Err(e) = hub.signal(app, &format!("group:{group}"), kind, &data).await {
            tracing::debug!(group, error = %e, "presence signal not delivered");
        }
    }
    match hub.store().partners(&app.spec.slug, user).await {
        Ok(partners) => {
            signal(hub, app, &partners, kind, &data).await;
            signal(hub, app, &partners, "chat:presence", &data).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not find whom to tell of a presence change"),
    }
}
