//! Publishing, and reading back channel history.

use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchboard_broker::Envelope;
use switchboard_protocol::api::{HistoryResponse, Position, PublishRequest, PublishResponse};
use switchboard_protocol::{encode_event, EventMeta};

use super::Hub;
use crate::history::{self, Item};
use crate::{clock, policy, App, HistorySpec, HubError};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
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
                return serde_json::from_str(&first).map_err(|e| HubError::Internal(e.to_string()));
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
        let assigned = self.shared.sequencer.publish(app.slug.clone(), items).await.map_err(|e| (0, e))?;
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
        if let Err(e) = self.publish_batch(app, requests).await {
            tracing::warn!(app = %app.slug, error = %e, "change stored but not pushed");
        }
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
    /// shares a commit instead of paying one per event.
    pub async fn publish_batch(
        &self,
        app: &App,
        requests: Vec<PublishRequest>,
    ) -> Result<Vec<PublishResponse>, HubError> {
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
        let mut pending = Vec::with_capacity(requests.len());
        for request in &requests {
            let id = uuid::Uuid::now_v7().to_string();
            let specs: Vec<_> = request.channels.iter().map(|c| app.spec.history_of(c)).collect();
            let items = items_of(request, &specs, &id, ts);
            pending.push((id, specs, self.shared.sequencer.submit(app.slug.clone(), items)?));
        }
        let mut results = Vec::with_capacity(requests.len());
        for (request, (id, specs, answer)) in requests.iter().zip(pending) {
            let positions = positions_of(request, &specs, answer.await?);
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
    Ok(())
}
