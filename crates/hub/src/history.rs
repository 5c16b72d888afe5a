//! Channel history: positions, the group-committed durable log, and in-memory rings.
//!
//! Every event of a channel with history passes through one sequencer task. It takes every
//! publish waiting at that moment, numbers their events, makes the durable ones durable in a
//! single store transaction (group commit: one commit for many publishes, not one each),
//! keeps the memory ones in [`MemoryHistory`], then hands all of them to the broker in seq
//! order, and only then answers the publishers. A subscriber therefore never sees an event
//! that a crash could still take back, and sees each channel's events in seq order.

mod memory;

use std::future::Future;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use switchboard_broker::{Broker, Envelope};
use switchboard_protocol::api::Position;
use switchboard_protocol::{encode_event, EventMeta};
use switchboard_store::{HistoryAppend, HistoryPage, Store, StoredEvent};
use tokio::sync::{mpsc, oneshot};

pub(crate) use memory::MemoryHistory;

use crate::metrics::NodeMetrics;
use crate::{HistorySpec, HubError};

/// Publishes the sequencer takes in one round, at most.
const ROUND: usize = 256;

/// One channel's copy of a publish, waiting for its position.
pub(crate) struct Item {
    pub(crate) channel: String,
    /// `None` for a channel without history: delivered in its turn, without a position.
    pub(crate) spec: Option<HistorySpec>,
    pub(crate) kind: String,
    pub(crate) data: String,
    pub(crate) id: String,
    pub(crate) ts: u64,
}

/// One publish's items, and where its positions go.
struct Job {
    app: Arc<str>,
    items: Vec<Item>,
    reply: oneshot::Sender<Result<Vec<Position>, HubError>>,
}

/// The handle publishers use; the task starts with the first publish.
pub(crate) struct Sequencer {
    jobs: OnceLock<mpsc::UnboundedSender<Job>>,
    parts: Arc<Parts>,
}

/// What the sequencer task works with.
struct Parts {
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    memory: Arc<MemoryHistory>,
    metrics: Arc<NodeMetrics>,
}

impl Sequencer {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        memory: Arc<MemoryHistory>,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Self { jobs: OnceLock::new(), parts: Arc::new(Parts { store, broker, memory, metrics }) }
    }

    /// Numbers, stores and delivers `items` (one per channel of one publish, in order);
    /// returns the positions of those with history once every one is durable and every item
    /// is handed to the broker.
    pub(crate) async fn publish(&self, app: Arc<str>, items: Vec<Item>) -> Result<Vec<Position>, HubError> {
        self.submit(app, items)?.await
    }

    /// Queues `items` at once, in call order, and returns what resolves to their positions:
    /// a batch submits all its publishes before awaiting any, so they share one commit.
    pub(crate) fn submit(
        &self,
        app: Arc<str>,
        items: Vec<Item>,
    ) -> Result<impl Future<Output = Result<Vec<Position>, HubError>>, HubError> {
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx, self.parts.clone()));
            tx
        });
        let stopped = || HubError::Internal("history sequencer stopped".into());
        let (reply, answer) = oneshot::channel();
        jobs.send(Job { app, items, reply }).map_err(|_| stopped())?;
        Ok(async move { answer.await.map_err(|_| stopped())? })
    }
}

async fn run(mut jobs: mpsc::UnboundedReceiver<Job>, parts: Arc<Parts>) {
    let mut round = Vec::with_capacity(ROUND);
    while jobs.recv_many(&mut round, ROUND).await > 0 {
        commit(&mut round, &parts).await;
    }
}

/// One round: one store transaction for every durable item, then delivery in order.
async fn commit(round: &mut Vec<Job>, parts: &Parts) {
    let Parts { store, broker, memory, metrics } = parts;
    let appends: Vec<HistoryAppend> = round
        .iter()
        .flat_map(|job| job.items.iter().filter_map(|i| Some(append_of(&job.app, i, i.spec.filter(|s| s.durable)?))))
        .collect();
    let stored = match appends.is_empty() {
        true => Ok(Vec::new()),
        false => {
            let started = std::time::Instant::now();
            let stored = store.append_history(&appends).await;
            metrics.store_commit.observe(started.elapsed());
            stored
        }
    };
    let mut durable = match stored {
        Ok(positions) => positions.into_iter(),
        Err(e) => {
            tracing::error!(error = %e, events = appends.len(), "history commit failed; nothing was published");
            let message = format!("the store could not keep the events: {e}");
            for job in round.drain(..) {
                let _ = job.reply.send(Err(HubError::Unavailable(message.clone())));
            }
            return;
        }
    };
    for job in round.drain(..) {
        let mut positions = Vec::with_capacity(job.items.len());
        let mut failed = None;
        for item in &job.items {
            let position = match item.spec {
                Some(spec) if spec.durable => durable.next(),
                Some(spec) => Some(memory.append(&job.app, item, spec)),
                None => None,
            };
            let event = stored_of(item, position.as_ref().map_or(0, |p| p.1));
            let epoch = position.as_ref().map(|p| p.0.as_str());
            let payload = encode_stored(&job.app, &item.channel, epoch, &event);
            let seq = event.seq;
            let channel = item.channel.as_str().into();
            let envelope = Envelope { app: job.app.clone(), channel, payload, seq, published_us: 0 };
            if let Err(e) = broker.publish(envelope).await {
                failed.get_or_insert(HubError::from(e));
            }
            positions.extend(position.map(|(epoch, seq)| Position { epoch, seq }));
        }
        let _ = job.reply.send(failed.map_or(Ok(positions), Err));
    }
}

fn append_of(app: &str, item: &Item, spec: HistorySpec) -> HistoryAppend {
    HistoryAppend {
        app: app.to_owned(),
        channel: item.channel.clone(),
        id: item.id.clone(),
        kind: item.kind.clone(),
        data: item.data.clone(),
        ts: item.ts,
        size: spec.size,
        ttl: spec.ttl,
    }
}

fn stored_of(item: &Item, seq: u64) -> StoredEvent {
    StoredEvent { seq, id: item.id.clone(), kind: item.kind.clone(), data: item.data.clone(), ts: item.ts }
}

/// An event as a client receives it, with its position when it has an epoch.
pub(crate) fn encode_stored(app: &str, channel: &str, epoch: Option<&str>, event: &StoredEvent) -> bytes::Bytes {
    // Stored data was raw JSON when published; should a row be damaged, `null` goes out.
    let data = RawValue::from_string(event.data.clone())
        .unwrap_or_else(|_| RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON")));
    let seq = epoch.map(|_| event.seq);
    let meta = EventMeta { app_slug: app, channel, id: &event.id, ts: event.ts, epoch, seq };
    encode_event(&event.kind, &data, &meta)
}

/// Reads a channel's history from wherever its spec keeps it.
pub(crate) async fn read(
    store: &dyn Store,
    memory: &MemoryHistory,
    app: &str,
    channel: &str,
    spec: HistorySpec,
    after: u64,
    limit: u32,
) -> Result<HistoryPage, HubError> {
    match spec.durable {
        true => Ok(store.history(app, channel, after, limit).await?),
        false => Ok(memory.read(app, channel, after, limit)),
    }
}

/// The seq of the newest event of a channel, from wherever its spec keeps it; 0 before the
/// first.
pub(crate) async fn head(
    store: &dyn Store,
    memory: &MemoryHistory,
    app: &str,
    channel: &str,
    spec: HistorySpec,
) -> Result<u64, HubError> {
    match spec.durable {
        true => Ok(store.history_head(app, channel).await?),
        false => Ok(memory.head(app, channel)),
    }
}
