//! One app's live connections and who is subscribed to what, sharded so that no single
//! lock sits on the hot path.
//!
//! Lock order, everywhere: a connection shard, then a channel shard. Publishing takes only
//! a channel shard. The user index is never held together with another lock.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use switchboard_broker::{Broker, Envelope, Topic};
use switchboard_protocol::Disconnect;

use crate::order::{Gap, Order, Verdict};
use crate::{ConnMeta, Outbox};

const SHARDS: usize = 64;

/// A connection's number, unique within the process.
pub type ConnId = u64;

struct ConnEntry {
    meta: Arc<ConnMeta>,
    outbox: Outbox,
    channels: HashSet<Arc<str>>,
}

/// A channel's subscribers on this node, and the order its events reach them in.
struct Subscribers {
    outboxes: HashMap<ConnId, Outbox>,
    order: Order,
}

impl Subscribers {
    fn after(head: Option<u64>) -> Self {
        Self { outboxes: HashMap::new(), order: Order::after(head) }
    }
}

/// What became of an envelope handed to [`Registry::deliver`].
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for this many subscribers (0 when the channel has none, or it was a copy of an
    /// event delivered already).
    Queued(usize),
    /// It waits behind a gap in the channel's seqs: the caller reads the gap from history
    /// and hands it to [`Registry::fill`].
    Gap(Gap),
}

/// The connections of one app.
pub struct Registry {
    app: Arc<str>,
    broker: Arc<dyn Broker>,
    conns: Vec<Mutex<HashMap<ConnId, ConnEntry>>>,
    channels: Vec<Mutex<HashMap<Arc<str>, Subscribers>>>,
    users: Vec<Mutex<HashMap<String, Vec<ConnId>>>>,
}

/// The user already holds the maximum number of connections.
#[derive(Debug)]
pub struct TooManyConnections;

fn shard_of<T: Hash + ?Sized>(key: &T) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the maps consistent, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn shards<T: Default>() -> Vec<Mutex<T>> {
    (0..SHARDS).map(|_| Mutex::default()).collect()
}

impl Registry {
    /// An empty registry whose first and last subscribers drive `broker` interest.
    pub fn new(app: Arc<str>, broker: Arc<dyn Broker>) -> Self {
        Self { app, broker, conns: shards(), channels: shards(), users: shards() }
    }

    fn topic(&self, channel: Arc<str>) -> Topic {
        Topic { app: self.app.clone(), channel }
    }

    /// Adds a connection, enforcing the per-user limit.
    pub fn insert(&self, meta: Arc<ConnMeta>, outbox: Outbox, max_per_user: usize) -> Result<(), TooManyConnections> {
        if let Some(user) = &meta.user_id {
            let mut users = lock(&self.users[shard_of(user)]);
            let ids = users.entry(user.clone()).or_default();
            if ids.len() >= max_per_user {
                return Err(TooManyConnections);
            }
            ids.push(meta.id);
        }
        let entry = ConnEntry { meta: meta.clone(), outbox, channels: HashSet::new() };
        lock(&self.conns[shard_of(&meta.id)]).insert(meta.id, entry);
        Ok(())
    }

    /// Removes a connection and all its subscriptions.
    pub fn remove(&self, id: ConnId) {
        let entry = {
            let mut conns = lock(&self.conns[shard_of(&id)]);
            let Some(entry) = conns.remove(&id) else { return };
            for channel in &entry.channels {
                self.drop_subscriber(channel, id);
            }
            entry
        };
        if let Some(user) = &entry.meta.user_id {
            let mut users = lock(&self.users[shard_of(user)]);
            if let Some(ids) = users.get_mut(user) {
                ids.retain(|c| *c != id);
                if ids.is_empty() {
                    users.remove(user);
                }
            }
        }
    }

    /// Whether `channel` has subscribers on this node.
    pub fn has_subscribers(&self, channel: &str) -> bool {
        lock(&self.channels[shard_of(channel)]).contains_key(channel)
    }

    /// Subscribes a connection; `false` when the connection is gone. `head`, the channel's
    /// newest seq read before this call, starts its order when this is its first subscriber.
    pub fn subscribe(&self, id: ConnId, channel: &str, head: Option<u64>) -> bool {
        let mut conns = lock(&self.conns[shard_of(&id)]);
        let Some(entry) = conns.get_mut(&id) else { return false };
        if entry.channels.contains(channel) {
            return true;
        }
        let mut map = lock(&self.channels[shard_of(channel)]);
        // Every subscriber of a channel shares one name (one allocation, not one per connection).
        let channel: Arc<str> = map.get_key_value(channel).map_or_else(|| channel.into(), |(name, _)| name.clone());
        entry.channels.insert(channel.clone());
        let subscribers = map.entry(channel.clone()).or_insert_with(|| Subscribers::after(head));
        if subscribers.outboxes.is_empty() {
            self.broker.subscribe(self.topic(channel));
        }
        subscribers.outboxes.insert(id, entry.outbox.clone());
        true
    }

    /// Unsubscribes a connection; `true` when it was subscribed.
    pub fn unsubscribe(&self, id: ConnId, channel: &str) -> bool {
        let mut conns = lock(&self.conns[shard_of(&id)]);
        let Some(entry) = conns.get_mut(&id) else { return false };
        if !entry.channels.remove(channel) {
            return false;
        }
        entry.outbox.forget(channel);
        self.drop_subscriber(channel, id);
        true
    }

    fn drop_subscriber(&self, channel: &str, id: ConnId) {
        let mut map = lock(&self.channels[shard_of(channel)]);
        if let Some(subscribers) = map.get_mut(channel) {
            subscribers.outboxes.remove(&id);
            if subscribers.outboxes.is_empty() {
                if let Some((channel, _)) = map.remove_entry(channel) {
                    self.broker.unsubscribe(self.topic(channel));
                }
            }
        }
    }

    /// Queues an envelope's frame for every subscriber of its channel, in the channel's seq
    /// order (see `order.rs`).
    pub fn deliver(&self, envelope: &Envelope) -> Delivery {
        let channel = &envelope.channel;
        let mut map = lock(&self.channels[shard_of(&**channel)]);
        let Some(subscribers) = map.get_mut(&**channel) else { return Delivery::Queued(0) };
        if envelope.seq > 0 {
            match subscribers.order.admit(envelope) {
                Verdict::Deliver => {}
                Verdict::Stale | Verdict::Wait(None) => return Delivery::Queued(0),
                Verdict::Wait(Some(gap)) => return Delivery::Gap(gap),
            }
        }
        Delivery::Queued(queue(&subscribers.outboxes, envelope))
    }

    /// Delivers a gap's events read from history (every one the store still has up to
    /// `read_to`) and what waited behind them; returns the next gap to read, if any. When
    /// history no longer had some of them, the channel's subscribers get the events before
    /// the first hole and then close 4009: their positions stay before the hole, so their
    /// resume reports the channel as not recovered.
    pub fn fill(&self, gap: &Gap, filled: Vec<Envelope>, read_to: u64) -> Option<Gap> {
        let channel = &*gap.channel;
        let mut map = lock(&self.channels[shard_of(channel)]);
        let subscribers = map.get_mut(channel)?;
        let resumed = subscribers.order.resume(filled, read_to, gap.horizon);
        let before_hole = resumed.lost.unwrap_or(resumed.ready.len());
        for envelope in &resumed.ready[..before_hole] {
            queue(&subscribers.outboxes, envelope);
        }
        if resumed.lost.is_some() {
            tracing::warn!(
                channel,
                "events were trimmed from history before reaching this node; its subscribers resync"
            );
            for outbox in subscribers.outboxes.values() {
                outbox.close(Disconnect::resync(), true);
            }
        }
        resumed.next.map(|(after, horizon)| Gap { channel: gap.channel.clone(), after, horizon })
    }

    /// After the broker connection was lost and is back: the gap to read for `channel`,
    /// whose newest committed seq is `head`, if this node missed any of it.
    pub fn catch_up(&self, channel: &str, head: u64) -> Option<Gap> {
        let mut map = lock(&self.channels[shard_of(channel)]);
        map.get_mut(channel)?.order.catch_up(&channel.into(), head)
    }

    /// The ids of a user's live connections.
    pub fn user_connections(&self, user: &str) -> Vec<ConnId> {
        lock(&self.users[shard_of(user)]).get(user).cloned().unwrap_or_default()
    }

    /// A connection's metadata and outbox.
    pub fn get(&self, id: ConnId) -> Option<(Arc<ConnMeta>, Outbox)> {
        let conns = lock(&self.conns[shard_of(&id)]);
        conns.get(&id).map(|e| (e.meta.clone(), e.outbox.clone()))
    }

    /// The channels a connection is subscribed to.
    pub fn channels(&self, id: ConnId) -> Vec<Arc<str>> {
        let conns = lock(&self.conns[shard_of(&id)]);
        conns.get(&id).map_or_else(Vec::new, |e| e.channels.iter().cloned().collect())
    }

    /// How many channels a connection is subscribed to.
    pub fn channel_count(&self, id: ConnId) -> usize {
        lock(&self.conns[shard_of(&id)]).get(&id).map_or(0, |e| e.channels.len())
    }

    /// Whether a connection is subscribed to a channel.
    pub fn is_subscribed(&self, id: ConnId, channel: &str) -> bool {
        let conns = lock(&self.conns[shard_of(&id)]);
        conns.get(&id).is_some_and(|e| e.channels.contains(channel))
    }

    /// The outbox of the connection whose public id is `connection_id`. A walk over every
    /// connection, stopping at the match: it serves the rare call aimed at one device.
    pub fn find(&self, connection_id: &str) -> Option<Outbox> {
        self.conns.iter().find_map(|shard| {
            let conns = lock(shard);
            conns.values().find(|e| e.meta.connection_id == connection_id).map(|e| e.outbox.clone())
        })
    }

    /// Every live connection's metadata.
    pub fn all(&self) -> Vec<Arc<ConnMeta>> {
        self.conns.iter().flat_map(|s| lock(s).values().map(|e| e.meta.clone()).collect::<Vec<_>>()).collect()
    }

    /// The users with a connection subscribed to `channel`, sorted (anonymous ones left out).
    pub fn channel_users(&self, channel: &str) -> Vec<String> {
        let map = lock(&self.channels[shard_of(channel)]);
        let ids: Vec<ConnId> = map.get(channel).map_or_else(Vec::new, |s| s.outboxes.keys().copied().collect());
        drop(map);
        let mut users: Vec<String> = ids.into_iter().filter_map(|id| self.get(id)?.0.user_id.clone()).collect();
        users.sort();
        users.dedup();
        users
    }

    /// Every channel with local subscribers, and how many connections each has.
    pub fn channel_counts(&self) -> Vec<(Arc<str>, usize)> {
        let each = |s: &Mutex<HashMap<Arc<str>, Subscribers>>| {
            lock(s).iter().map(|(c, subs)| (c.clone(), subs.outboxes.len())).collect::<Vec<_>>()
        };
        self.channels.iter().flat_map(each).collect()
    }

    /// Every connected user, and how many connections each has.
    pub fn user_counts(&self) -> Vec<(String, usize)> {
        let each = |s: &Mutex<HashMap<String, Vec<ConnId>>>| {
            lock(s).iter().map(|(u, ids)| (u.clone(), ids.len())).collect::<Vec<_>>()
        };
        self.users.iter().flat_map(each).collect()
    }

    /// How many connections are live.
    pub fn count(&self) -> usize {
        self.conns.iter().map(|s| lock(s).len()).sum()
    }

    /// How many distinct users are connected.
    pub fn user_count(&self) -> usize {
        self.users.iter().map(|s| lock(s).len()).sum()
    }
}

/// Queues one envelope for every subscriber; how many took it. A full outbox closes its own
/// connection; the others are not slowed.
fn queue(outboxes: &HashMap<ConnId, Outbox>, envelope: &Envelope) -> usize {
    let push = |outbox: &&Outbox| match envelope.seq {
        0 => outbox.push(envelope.payload.clone()).is_ok(),
        seq => outbox.push_event(&envelope.channel, seq, envelope.payload.clone()).is_ok(),
    };
    outboxes.values().filter(push).count()
}
