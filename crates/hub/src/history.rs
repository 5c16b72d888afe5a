//! Channel history: positions, the group-committed durable log, and in-memory rings.
//!
//! Every event of a channel with history passes through one sequencer task. It takes every
//! publish waiting at that moment, numbers their events, makes the durable ones durable in a
//! single store transaction (group commit: one commit for many publishes, not one each),
//! keeps the memory ones in [`MemoryHistory`], then hands all of them to the broker in seq
//! order, and only then answers the publishers. A subscriber therefore never sees an event
//! that a crash could still take back, and sees each channel's events in seq order.

mod memory;
mod unsent;

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Publishes the sequencer takes in one round, at most: large rounds share a commit's fixed
/// cost (1,024 sustained 10-20% more batched events than 256; docs/BENCHMARKS.md, change 12).
const ROUND: usize = 1024;

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

/// What one queued publish resolves to: its positions, once durable and delivered.
pub(crate) struct Answer(oneshot::Receiver<Result<Vec<Position>, HubError>>);

impl Answer {
    pub(crate) async fn positions(self) -> Result<Vec<Position>, HubError> {
        self.0.await.map_err(|_| stopped())?
    }
}

fn stopped() -> HubError {
    HubError::Internal("history sequencer stopped".into())
}

/// Publishes waiting for the sequencer, at most, unless the server sets otherwise: at the
/// tens of thousands of durable events a second one SQLite store commits, a fraction of a
/// second's wait, and room for 64 publishers' batches of 100 at once.
pub(crate) const QUEUE: usize = 8192;

/// The handle publishers use; the task starts with the first publish.
///
/// Its queue is bounded in publishes (the task holds one more round of at most 1,024 while it
/// commits, and up to two committed rounds waiting for delivery): a rate the store cannot
/// sustain would otherwise grow memory and every publisher's wait without limit. Publishers from outside (the API, a client) are refused
/// at once when it is full ([`HubError::Overloaded`], 503 with `Retry-After`); changes a
/// feature has already stored wait for room instead ([`Sequencer::submit_waiting`]), since
/// refusing them would only lose their push.
pub(crate) struct Sequencer {
    jobs: OnceLock<mpsc::Sender<Job>>,
    capacity: AtomicUsize,
    parts: Arc<Parts>,
}

/// What the sequencer task works with.
struct Parts {
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    memory: Arc<MemoryHistory>,
    metrics: Arc<NodeMetrics>,
    /// Committed events the broker did not take, to publish again.
    unsent: unsent::Unsent,
}

impl Sequencer {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        memory: Arc<MemoryHistory>,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        let parts = Arc::new(Parts { store, broker, memory, metrics, unsent: unsent::Unsent::default() });
        Self { jobs: OnceLock::new(), capacity: AtomicUsize::new(QUEUE), parts }
    }

    /// Sets the queue's bound; `false` once the first publish has started the task with
    /// the bound it had then.
    pub(crate) fn set_capacity(&self, jobs: usize) -> bool {
        self.capacity.store(jobs.max(1), Ordering::Relaxed);
        self.jobs.get().is_none()
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.capacity.load(Ordering::Relaxed));
            tokio::spawn(run(rx, self.parts.clone()));
            tokio::spawn(unsent::retry(Arc::downgrade(&self.parts)));
            tx
        })
    }

    /// Room for this many publishes now.
    pub(crate) fn room(&self) -> usize {
        self.jobs.get().map_or_else(|| self.capacity.load(Ordering::Relaxed), mpsc::Sender::capacity)
    }

    /// The queue's bound.
    pub(crate) fn bound(&self) -> usize {
        self.jobs.get().map_or_else(|| self.capacity.load(Ordering::Relaxed), mpsc::Sender::max_capacity)
    }

    /// Queues one publish's items, or refuses them when the queue is full.
    pub(crate) fn submit_one(&self, app: &Arc<str>, items: Vec<Item>) -> Result<Answer, HubError> {
        self.submit_all(app, vec![items])?.pop().ok_or_else(stopped)
    }

    /// Queues every publish of `batch` (each the items of one publish, one per channel, in
    /// order) at once, or none of them when the queue has no room for all: a batch is
    /// answered whole, and its publishes share a commit.
    pub(crate) fn submit_all(&self, app: &Arc<str>, batch: Vec<Vec<Item>>) -> Result<Vec<Answer>, HubError> {
        let sender = self.sender();
        let permits = sender.try_reserve_many(batch.len()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => HubError::Overloaded(format!(
                "publishing faster than the history store commits: its queue of {} publishes is full; retry in {} s",
                sender.max_capacity(),
                HubError::RETRY_AFTER_SECS
            )),
            mpsc::error::TrySendError::Closed(()) => stopped(),
        })?;
        Ok(permits.zip(batch).map(|(permit, items)| Answer(enqueue(permit, app, items))).collect())
    }

    /// Queues `batch` in order, waiting for room as it frees (in turns of at most the whole
    /// queue, for a batch larger than it): for changes already stored, whose push must not
    /// be lost to a busy moment.
    pub(crate) async fn submit_waiting(&self, app: &Arc<str>, batch: Vec<Vec<Item>>) -> Result<Vec<Answer>, HubError> {
        let sender = self.sender();
        let mut answers = Vec::with_capacity(batch.len());
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            let turn: Vec<Vec<Item>> = batch.by_ref().take(sender.max_capacity()).collect();
            let permits = sender.reserve_many(turn.len()).await.map_err(|_| stopped())?;
            answers.extend(permits.zip(turn).map(|(permit, items)| Answer(enqueue(permit, app, items))));
        }
        Ok(answers)
    }
}

fn enqueue(
    permit: mpsc::Permit<'_, Job>,
    app: &Arc<str>,
    items: Vec<Item>,
) -> oneshot::Receiver<Result<Vec<Position>, HubError>> {
    let (reply, answer) = oneshot::channel();
    permit.send(Job { app: app.clone(), items, reply });
    answer
}

/// Committed rounds waiting for delivery, at most: the store commits the next round while the
/// last one is encoded and handed to the broker, so neither waits for the other.
const PIPELINE: usize = 2;

/// A round the store has answered for, in commit order.
struct Committed {
    round: Vec<Job>,
    /// Each durable item's position, in order; or why the store kept none.
    durable: Result<std::vec::IntoIter<(String, u64)>, String>,
}

async fn run(mut jobs: mpsc::Receiver<Job>, parts: Arc<Parts>) {
    let (committed, to_deliver) = mpsc::channel(PIPELINE);
    tokio::spawn(deliver_all(to_deliver, parts.clone()));
    loop {
        let mut round = Vec::new();
        if jobs.recv_many(&mut round, ROUND).await == 0 {
            return;
        }
        let durable = commit(&round, &parts).await;
        if committed.send(Committed { round, durable }).await.is_err() {
            return;
        }
    }
}

/// One store transaction for every durable item of the round.
async fn commit(round: &[Job], parts: &Parts) -> Result<std::vec::IntoIter<(String, u64)>, String> {
    let appends: Vec<HistoryAppend> = round
        .iter()
        .flat_map(|job| job.items.iter().filter_map(|i| Some(append_of(&job.app, i, i.spec.filter(|s| s.durable)?))))
        .collect();
    if appends.is_empty() {
        return Ok(Vec::new().into_iter());
    }
    let started = std::time::Instant::now();
    let stored = parts.store.append_history(&appends).await;
    parts.metrics.store_commit.observe(started.elapsed());
    stored.map(Vec::into_iter).map_err(|e| {
        tracing::error!(error = %e, events = appends.len(), "history commit failed; nothing was published");
        format!("the store could not keep the events: {e}")
    })
}

async fn deliver_all(mut rounds: mpsc::Receiver<Committed>, parts: Arc<Parts>) {
    while let Some(Committed { round, durable }) = rounds.recv().await {
        match durable {
            Ok(durable) => deliver(round, durable, &parts).await,
            Err(message) => {
                for job in round {
                    let _ = job.reply.send(Err(HubError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Delivery of a committed round, in order, then the answers.
///
/// A publish with a durable event is acknowledged once committed, even when the broker did
/// not take it: the event reaches every subscriber from the store, and an error would make
/// its publisher retry and store it twice. The broker's refusal fails only a publish with
/// nothing durable.
async fn deliver(round: Vec<Job>, mut durable: std::vec::IntoIter<(String, u64)>, parts: &Parts) {
    let Parts { broker, memory, unsent, .. } = parts;
    // Every envelope of the round goes to the broker in order, and the confirmations are
    // awaited together: a remote broker confirms a whole round in one round trip.
    let (mut envelopes, mut owners, mut answers) = (Vec::new(), Vec::new(), Vec::with_capacity(round.len()));
    for (index, job) in round.iter().enumerate() {
        let mut positions = Vec::with_capacity(job.items.len());
        for item in &job.items {
            let position = match item.spec {
                Some(spec) if spec.durable => durable.next(),
                Some(spec) => Some(memory.append(&job.app, item, spec)),
                None => None,
            };
            let event = stored_of(item, position.as_ref().map_or(0, |p| p.1));
            let epoch = position.as_ref().map(|p| p.0.as_str());
            let payload = encode_stored(&job.app, &item.channel, epoch, &event);
            let (seq, channel) = (event.seq, item.channel.as_str().into());
            envelopes.push(Envelope { app: job.app.clone(), channel, payload, seq, published_us: 0 });
            owners.push((index, item.spec.is_some_and(|s| s.durable)));
            positions.extend(position.map(|(epoch, seq)| Position { epoch, seq }));
        }
        answers.push((positions, None::<HubError>, false));
    }
    let results = broker.publish_all(envelopes.clone()).await;
    for ((envelope, (index, is_durable)), result) in envelopes.into_iter().zip(owners).zip(results) {
        let (_, failed, committed) = &mut answers[index];
        *committed |= is_durable;
        if let Err(e) = result {
            if is_durable {
                unsent.keep(envelope);
            }
            failed.get_or_insert(HubError::from(e));
        }
    }
    for (job, (positions, mut failed, committed)) in round.into_iter().zip(answers) {
        if let (true, Some(e)) = (committed, &failed) {
            tracing::warn!(error = %e, "the broker did not take committed events; they are published again when it does");
            failed = None;
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
