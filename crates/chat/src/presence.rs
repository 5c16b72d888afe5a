//! Presence: a user is online from their first connection, and offline
//! `presence.offline_grace` (5 s) after their last one closes, so a page reload does not
//! flap. `presence:set` makes them `away` or `busy`. Each change is signalled (live only) to
//! the user's groups as `presence:{status}`, and to everyone who shares a conversation with
//! them as `presence:{status}` and `chat:presence`. The last-seen time is stored when they go
//! offline.
//!
//! This tracker knows the connections of this node. Across nodes, presence moves to the
//! broker with node heartbeats (the multi-node issue): a crashed node's users then go
//! offline when its heartbeat stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use switchboard_hub::{rfc3339, unix_ms, App, ConnMeta, Hub};

use crate::{signal, view, Chat, ChatError};

/// The statuses a user may set.
const STATUSES: [&str; 3] = ["online", "away", "busy"];

/// One user of one app: (app, user).
type Key = (Arc<str>, String);

/// Who is connected to this node, per app and user.
#[derive(Default, Clone)]
pub struct Presence {
    users: Arc<Mutex<HashMap<Key, Entry>>>,
}

struct Entry {
    connections: usize,
    status: &'static str,
    /// Changes whenever a connection comes or goes, so a stale offline timer knows it.
    generation: u64,
    /// Where to announce: the groups of the user's connections.
    groups: Vec<String>,
}

impl Presence {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `online`, `away` or `busy` while the user is connected (or within the grace period);
    /// `None` when offline.
    pub fn status(&self, app: &str, user: &str) -> Option<&'static str> {
        self.lock().get(&(Arc::from(app), user.to_owned())).map(|e| e.status)
    }
}

impl Chat {
    /// A connection opened: the user's first makes them online.
    pub(crate) async fn connected(&self, hub: &Hub, app: &App, meta: &ConnMeta) {
        let Some(user) = meta.user_id.clone() else { return };
        // The connection's groups: its token's and its server-managed ones, as subscribed.
        let channels = app.registry.channels(meta.id);
        let groups = channels.iter().filter_map(|c| c.strip_prefix("group:")).map(str::to_owned);
        let announce = {
            let mut users = self.presence.lock();
            let entry = users.entry((app.slug.clone(), user.clone())).or_insert_with(|| Entry {
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
                entry.status = "online";
            }
            new.then(|| entry.groups.clone())
        };
        if let Some(groups) = announce {
            announce_status(hub, app, &user, "online", &groups, None).await;
        }
    }

    /// A connection closed: after the grace period without a new one, the user is offline.
    pub(crate) fn disconnected(&self, hub: &Hub, app: &Arc<App>, meta: &ConnMeta) {
        let Some(user) = meta.user_id.clone() else { return };
        let key = (app.slug.clone(), user);
        let generation = {
            let mut users = self.presence.lock();
            let Some(entry) = users.get_mut(&key) else { return };
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
                let mut users = presence.lock();
                match users.get(&key) {
                    Some(e) if e.connections == 0 && e.generation == generation => users.remove(&key),
                    _ => None,
                }
            };
            if let Some(entry) = gone {
                let now = unix_ms();
                if let Err(e) = hub.store().set_last_seen(&app.spec.slug, &key.1, now).await {
                    tracing::warn!(error = %e, "could not store a last-seen time");
                }
                announce_status(&hub, &app, &key.1, "offline", &entry.groups, Some(now)).await;
            }
        });
    }

    /// `presence:set {status}`: online, away or busy, for all of the user's devices.
    pub async fn set_status(&self, hub: &Hub, app: &App, user: &str, status: &str) -> Result<Value, ChatError> {
        let Some(status) = STATUSES.iter().copied().find(|s| *s == status) else {
            return Err(ChatError::BadRequest(format!("field `data.status`: `{status}` is not one of {STATUSES:?}")));
        };
        let groups = {
            let mut users = self.presence.lock();
            let entry = users.get_mut(&(app.slug.clone(), user.to_owned()));
            let entry = entry.ok_or_else(|| ChatError::Forbidden("only a connected user has a presence".into()))?;
            entry.status = status;
            entry.groups.clone()
        };
        announce_status(hub, app, user, status, &groups, None).await;
        Ok(json!({ "userKey": user, "status": status }))
    }

    /// `GET /presence?users=`: each user's status, connections on this node and last-seen time.
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

/// Signals a status change to the user's groups and conversation partners.
async fn announce_status(hub: &Hub, app: &App, user: &str, status: &'static str, groups: &[String], seen: Option<u64>) {
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
