//! History kept in this process's memory, for namespaces that ask for `memory` storage: a
//! bounded ring per channel. A restart loses it, so each ring gets a fresh epoch.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use switchboard_store::{new_epoch, HistoryPage, StoredEvent};
use tokio::time::Instant;

use super::Item;
use crate::HistorySpec;

/// Every memory-history channel of every app.
#[derive(Default)]
pub(crate) struct MemoryHistory {
    rings: Mutex<HashMap<(String, String), Ring>>,
}

struct Ring {
    epoch: String,
    latest: u64,
    events: VecDeque<(Instant, StoredEvent)>,
}

impl Ring {
    fn new() -> Self {
        // Bounded by the namespace's history `size` (at most 100,000): appends trim it.
        Self { epoch: new_epoch(), latest: 0, events: VecDeque::new() }
    }

    /// Drops events past their deadline or beyond `size`.
    fn trim(&mut self, size: usize) {
        let now = Instant::now();
        while self.events.front().is_some_and(|(deadline, _)| *deadline <= now) || self.events.len() > size {
            self.events.pop_front();
        }
    }
}

impl MemoryHistory {
    /// Keeps `item` as the channel's next event; returns its epoch and seq.
    pub(crate) fn append(&self, app: &str, item: &Item, spec: HistorySpec) -> (String, u64) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = rings.entry((app.to_owned(), item.channel.clone())).or_insert_with(Ring::new);
        ring.latest += 1;
        let event = super::stored_of(item, ring.latest);
        ring.events.push_back((Instant::now() + spec.ttl, event));
        ring.trim(spec.size as usize);
        (ring.epoch.clone(), ring.latest)
    }

    /// The seq of the channel's newest event; 0 before the first.
    pub(crate) fn head(&self, app: &str, channel: &str) -> u64 {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        rings.get(&(app.to_owned(), channel.to_owned())).map_or(0, |ring| ring.latest)
    }

    /// Up to `limit` live events of the channel after seq `after`.
    pub(crate) fn read(&self, app: &str, channel: &str, after: u64, limit: u32) -> HistoryPage {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = rings.entry((app.to_owned(), channel.to_owned())).or_insert_with(Ring::new);
        ring.trim(usize::MAX);
        let oldest = ring.events.front().map_or(ring.latest + 1, |(_, e)| e.seq);
        let events =
            ring.events.iter().filter(|(_, e)| e.seq > after).take(limit as usize).map(|(_, e)| e.clone()).collect();
        HistoryPage { epoch: ring.epoch.clone(), latest: ring.latest, oldest, events }
    }
}
