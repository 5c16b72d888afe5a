//! Publishing, and reading back channel history.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchboard_broker::Envelope;
use switchboard_protocol::api::{HistoryResponse, Position, PublishRequest, PublishResponse};
use switchboard_protocol::{encode_event, EventMeta};

use super::Hub;
use crate::history::{self, Item};
use crate::{clock, policy, App, HistorySpec, HubError, Limits};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a claimed idempotency key without positions counts as a publish in progress.
const IN_FLIGHT: Duration = Duration::from_secs(60);
/// Most channels one publish may name.
pub const MAX_CHANNELS_PER_PUBLISH: usize = 100;
/// Most events one history read returns.
pub const MAX_HISTORY_LIMIT: u32 = 1000;

impl Hub {
    /// Publishes one event to the request's channels. Returns once the event is durable on
    /// every channel with durable history and handed to the broker on every channel.
    pub async fn publish(&self, app: &App, request: PublishRequest) -> Result<PublishResponse, HubError> {
        self.check_publish(app, &request)?;
        let id = uuid::Uuid::now_v7().to_string();
        let store = &self.shared.store;
        if let Some(key) = &request.idempotency_key {
            let claim = record(&PublishResponse { id: id.clone(), positions: Map::new() })?;
            if let Some(first) = store.claim_idempotency(&app.spec.slug, key, &claim, IDEMPOTENCY_TTL).await? {
                let first: PublishResponse =
                    serde_json::from_str(&first).map_err(|e| HubError::Internal(e.to_string()))?;
                return self.repeat(app, &request, first);
            }
        }
        match self.fan_out(app, &request, &id).await {
            Ok(positions) => {
                let response = PublishResponse { id, positions };
                if let (Some(key), false) = (&request.idempotency_key, response.positions.is_empty()) {
                    // A repeat must see the positions too, which exist only now.
                    store.update_idempotency(&app.spec.slug, key, &record(&response)?).await?;
                }
                Ok(response)
            }
            Err((sent, e)) => {
                // Only when nothing went out may a retry with the same key publish again;
                // after a partial fan-out the key keeps its claim and the error is reported.
                if let (0, Some(key)) = (sent, &request.idempotency_key) {
                    let _ = store.release_idempotency(&app.spec.slug, key).await;
                }
                Err(e)
            }
        }
    }

    /// The answer to a repeat of the publish `first` (same idempotency key). A first publish
    /// with history has its positions once it is committed; a claim without them that is
    /// younger than [`IN_FLIGHT`] is still being published, and the repeat is asked to retry
    /// rather than told "done" without positions. An older one never finished (its node
    /// died): its outcome is unknown, and it is answered as it stands.
    fn repeat(&self, app: &App, request: &PublishRequest, first: PublishResponse) -> Result<PublishResponse, HubError> {
        let with_history = request.channels.iter().any(|c| app.spec.history_of(c).is_some());
        let started_ms = uuid::Uuid::parse_str(&first.id)
            .ok()
            .and_then(|id| id.get_timestamp())
            .map_or(0, |ts| ts.to_unix().0 * 1000);
        let in_flight = clock::unix_ms().saturating_sub(started_ms) < IN_FLIGHT.as_millis() as u64;
        if with_history && first.positions.is_empty() && in_flight {
            return Err(HubError::Overloaded(format!(
                "a publish with this idempotency_key is still in progress; retry in {} s",
                HubError::RETRY_AFTER_SECS
            )));
        }
        Ok(first)
    }

    /// A publish that touches a channel with history goes through the sequencer as a whole
    /// (numbered, stored, then delivered channel by channel in request order); any other goes
    /// straight to the broker. On failure, how many channels went out.
    async fn fan_out(
        &self,
        app: &App,
        request: &PublishRequest,
        id: &str,
    ) -> Result<Map<String, Value>, (usize, HubError)> {
        let ts = clock::unix_ms();
        let specs: Vec<_> = request.channels.iter().map(|c| app.spec.history_of(c)).collect();
        if specs.iter().all(Option::is_none) {
            for (sent, channel) in request.channels.iter().enumerate() {
                self.live(app, channel, &request.kind, &request.data, id, ts).await.map_err(|e| (sent, e))?;
            }
            return Ok(Map::new());
        }
        let items = items_of(request, &specs, id, ts);
        let answer = self.shared.sequencer.submit_one(&app.slug, items).map_err(|e| (0, self.shed(app, 1, e)))?;
        let assigned = answer.positions().await.map_err(|e| (0, e))?;
        Ok(positions_of(request, &specs, assigned))
    }

    /// Publishes `(channel, type, data)` events in order, as one batch, for a feature that has
    /// already stored the change: a failure is logged, not returned, since clients find the
    /// stored change when they next load it.
    pub async fn push(&self, app: &App, events: Vec<(String, &str, Value)>) {
        let mut requests = Vec::with_capacity(events.len());
        for (channel, kind, data) in events {
            match serde_json::value::to_raw_value(&data) {
                Ok(data) => requests.push(PublishRequest {
                    channels: vec![channel],
                    kind: kind.to_owned(),
                    data,
                    idempotency_key: None,
                }),
                Err(e) => tracing::error!(kind, error = %e, "event data that is not JSON"),
            }
        }
        // Stored changes wait for room in the history queue rather than being shed.
        if let Err(e) = self.batch(app, requests, Admit::Wait).await {
            tracing::warn!(app = %app.slug, error = %e, "change stored but not pushed");
        }
    }

    /// Refuses now, as overloaded, a change that would publish `events` events while the
    /// history queue has no room for them: for a feature to call before it stores anything,
    /// so that its client can retry without a duplicate.
    pub fn check_room(&self, app: &App, events: usize) -> Result<(), HubError> {
        let sequencer = &self.shared.sequencer;
        if sequencer.room() >= events.min(sequencer.bound()) {
            return Ok(());
        }
        let message = format!(
            "the server is publishing more than its history store commits; retry in {} s",
            HubError::RETRY_AFTER_SECS
        );
        Err(self.shed(app, events, HubError::Overloaded(message)))
    }

    /// Sets how many publishes may wait for the history store (the server's
    /// `history_queue`); `false`, and no change, once the first publish has started it.
    pub fn set_history_queue(&self, publishes: usize) -> bool {
        self.shared.sequencer.set_capacity(publishes)
    }

    /// Counts `events` shed publishes when `error` is the queue's refusal; returns `error`.
    fn shed(&self, app: &App, events: usize, error: HubError) -> HubError {
        if matches!(error, HubError::Overloaded(_)) {
            app.metrics.shed.fetch_add(events as u64, std::sync::atomic::Ordering::Relaxed);
        }
        error
    }

    /// Delivers an event to `channel`'s live subscribers with no history and no position,
    /// even on a channel that keeps history: typing indicators and presence changes, which
    /// no one should replay.
    pub async fn signal(&self, app: &App, channel: &str, kind: &str, data: &Value) -> Result<(), HubError> {
        policy::check_name(&app.spec, channel).map_err(HubError::BadRequest)?;
        let data = serde_json::value::to_raw_value(data).map_err(|e| HubError::Internal(e.to_string()))?;
        let id = uuid::Uuid::now_v7().to_string();
        self.live(app, channel, kind, &data, &id, clock::unix_ms()).await
    }

    /// Hands one positionless event to the broker.
    async fn live(
        &self,
        app: &App,
        channel: &str,
        kind: &str,
        data: &RawValue,
        id: &str,
        ts: u64,
    ) -> Result<(), HubError> {
        let meta = EventMeta { app_slug: &app.slug, channel, id, ts, epoch: None, seq: None };
        let payload = encode_event(kind, data, &meta);
        let envelope = Envelope { app: app.slug.clone(), channel: channel.into(), payload, seq: 0, published_us: 0 };
        Ok(self.shared.broker.publish(envelope).await?)
    }

    /// Publishes a checked batch in order. Without idempotency keys, a batch that touches
    /// history submits every event to the sequencer before awaiting any, so the whole batch
    /// shares a commit instead of paying one per event; and is refused whole (503) when the
    /// history queue has no room for all of it. The events one channel gets must fit
    /// together in a connection's queue, or the batch is refused (413).
    pub async fn publish_batch(
        &self,
        app: &App,
        requests: Vec<PublishRequest>,
    ) -> Result<Vec<PublishResponse>, HubError> {
        self.batch(app, requests, Admit::Shed).await
    }

    async fn batch(
        &self,
        app: &App,
        requests: Vec<PublishRequest>,
        admit: Admit,
    ) -> Result<Vec<PublishResponse>, HubError> {
        check_batch_fits(app, &requests)?;
        let keyed = requests.iter().any(|r| r.idempotency_key.is_some());
        let logged = requests.iter().any(|r| r.channels.iter().any(|c| app.spec.history_of(c).is_some()));
        if keyed || !logged {
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                results.push(self.publish(app, request).await?);
            }
            return Ok(results);
        }
        let ts = clock::unix_ms();
        let (mut ids, mut all_specs, mut batch) = (Vec::new(), Vec::new(), Vec::new());
        for request in &requests {
            let id = uuid::Uuid::now_v7().to_string();
            let specs: Vec<_> = request.channels.iter().map(|c| app.spec.history_of(c)).collect();
            batch.push(items_of(request, &specs, &id, ts));
            ids.push(id);
            all_specs.push(specs);
        }
        let sequencer = &self.shared.sequencer;
        let answers = match admit {
            Admit::Shed => sequencer.submit_all(&app.slug, batch).map_err(|e| self.shed(app, requests.len(), e))?,
            Admit::Wait => sequencer.submit_waiting(&app.slug, batch).await?,
        };
        let mut results = Vec::with_capacity(requests.len());
        for (((request, id), specs), answer) in requests.iter().zip(ids).zip(all_specs).zip(answers) {
            let positions = positions_of(request, &specs, answer.positions().await?);
            results.push(PublishResponse { id, positions });
        }
        Ok(results)
    }

    /// Checks a publish request without publishing: type, channel count and names.
    pub fn check_publish(&self, app: &App, request: &PublishRequest) -> Result<(), HubError> {
        validate_publish(app, request)
    }

    /// Up to `limit` events of `channel` after seq `since`, as clients receive them.
    /// `complete` is `false` when some of them are gone, or when `epoch` names another one.
    pub async fn history(
        &self,
        app: &App,
        channel: &str,
        since: u64,
        epoch: Option<&str>,
        limit: u32,
    ) -> Result<HistoryResponse, HubError> {
        policy::check_name(&app.spec, channel).map_err(HubError::BadRequest)?;
        let Some(spec) = app.spec.history_of(channel) else {
            return Err(HubError::BadRequest(format!(
                "channel `{channel}` keeps no history; the manifest's `history` settings choose which channels do"
            )));
        };
        if limit == 0 || limit > MAX_HISTORY_LIMIT {
            return Err(HubError::BadRequest(format!("`limit` must be 1 to {MAX_HISTORY_LIMIT}")));
        }
        let shared = &self.shared;
        let page = history::read(shared.store.as_ref(), &shared.memory, &app.slug, channel, spec, since, limit).await?;
        let same_epoch = epoch.is_none_or(|e| e == page.epoch);
        let events = page
            .events
            .iter()
            .map(|event| history::encode_stored(&app.slug, channel, Some(&page.epoch), event))
            .map(|frame| RawValue::from_string(String::from_utf8_lossy(&frame).into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HubError::Internal(e.to_string()))?;
        Ok(HistoryResponse {
            channel: channel.to_owned(),
            complete: same_epoch && since + 1 >= page.oldest,
            epoch: page.epoch,
            latest: page.latest,
            events,
        })
    }
}

/// What a batch does when the history queue has no room for it.
#[derive(Clone, Copy)]
enum Admit {
    /// Refuse it whole, overloaded: a publisher from outside retries later.
    Shed,
    /// Wait for room: the change is already stored.
    Wait,
}

/// One sequencer item per channel of a publish, in the request's order.
fn items_of(request: &PublishRequest, specs: &[Option<HistorySpec>], id: &str, ts: u64) -> Vec<Item> {
    let item = |(channel, spec): (&String, &Option<HistorySpec>)| Item {
        channel: channel.clone(),
        spec: *spec,
        kind: request.kind.clone(),
        data: request.data.get().to_owned(),
        id: id.to_owned(),
        ts,
    };
    request.channels.iter().zip(specs).map(item).collect()
}

/// The positions the sequencer assigned, keyed by the channels with history.
fn positions_of(
    request: &PublishRequest,
    specs: &[Option<HistorySpec>],
    assigned: Vec<Position>,
) -> Map<String, Value> {
    let logged = request.channels.iter().zip(specs).filter(|(_, spec)| spec.is_some());
    logged
        .zip(assigned)
        .map(|((channel, _), Position { epoch, seq })| {
            (channel.clone(), serde_json::json!({ "epoch": epoch, "seq": seq }))
        })
        .collect()
}

fn record(response: &PublishResponse) -> Result<String, HubError> {
    serde_json::to_string(response).map_err(|e| HubError::Internal(e.to_string()))
}

fn validate_publish(app: &App, request: &PublishRequest) -> Result<(), HubError> {
    if request.kind.is_empty() {
        return Err(HubError::BadRequest("field `type` must be a non-empty string".into()));
    }
    if request.channels.is_empty() {
        return Err(HubError::BadRequest("field `channels` must list at least one channel".into()));
    }
    if request.channels.len() > MAX_CHANNELS_PER_PUBLISH {
        return Err(HubError::BadRequest(format!(
            "field `channels` lists more than {MAX_CHANNELS_PER_PUBLISH} channels"
        )));
    }
    for channel in &request.channels {
        policy::check_name(&app.spec, channel).map_err(|m| HubError::BadRequest(format!("field `channels`: {m}")))?;
    }
    Limits::check_data_depth("data", request.data.get()).map_err(HubError::BadRequest)?;
    let limit = app.spec.limits.outbox_max_bytes;
    for channel in &request.channels {
        let size = frame_size(app, request, channel);
        if size > limit {
            return Err(HubError::TooLarge(format!(
                "the event is {size} bytes as channel `{channel}` delivers it; app `{}` queues at most {limit} bytes \
                 for a connection (limits.outbox_max_bytes), so no subscriber could receive it",
                app.slug
            )));
        }
    }
    Ok(())
}

/// Refuses a batch whose events for one channel add up to more than a connection's queue
/// holds: they are delivered together, so a subscriber of that channel would be closed as a
/// slow consumer (4008) however fast it reads.
fn check_batch_fits(app: &App, requests: &[PublishRequest]) -> Result<(), HubError> {
    let limit = app.spec.limits.outbox_max_bytes;
    let mut per_channel: HashMap<&str, usize> = HashMap::new();
    for request in requests {
        for channel in &request.channels {
            let total = per_channel.entry(channel).or_default();
            *total += frame_size(app, request, channel);
            if *total > limit {
                return Err(HubError::TooLarge(format!(
                    "the batch's events for channel `{channel}` come to more than {limit} bytes, what app `{}` \
                     queues for a connection (limits.outbox_max_bytes); split the batch",
                    app.slug
                )));
            }
        }
    }
    Ok(())
}

/// The most bytes `request`'s event can take in a queue as `channel` delivers it: its frame
/// with the longest position any channel gives (a 16-digit epoch, the largest seq).
fn frame_size(app: &App, request: &PublishRequest, channel: &str) -> usize {
    const ID: &str = "01234567-89ab-cdef-0123-456789abcdef";
    const EPOCH: &str = "0123456789abcdef";
    let meta =
        EventMeta { app_slug: &app.slug, channel, id: ID, ts: u64::MAX, epoch: Some(EPOCH), seq: Some(u64::MAX) };
    // The frame around `null`, then the data in its place.
    encode_event(&request.kind, RawValue::NULL, &meta).len() - "null".len() + request.data.get().len()
}
