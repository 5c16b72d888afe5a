//! Replays: sending a connection the events it missed on channels with history, each once
//! and in order, for `resume` and `subscribe` with `since`.
//!
//! The connection's outbox holds back live events with a position while a replay runs, so
//! nothing published meanwhile can overtake the replay or be lost. Each channel's history is
//! read after the hold began: an event is either in what was read (and replayed) or arrived
//! live after the hold began (and is held). The outbox's ledger drops any live copy of an
//! event the replay sent, held or delivered later (the sequencer delivers after it commits,
//! so a replay can read an event before its live copy arrives). What the connection was sent live before the hold is in its ledger and is
//! not sent twice; a gap before it cannot be filled in order, so that channel is reported
//! as not recovered.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use switchboard_protocol::api::Position;
use switchboard_store::HistoryPage;

use crate::history::{self, encode_stored};
use crate::session::Session;
use crate::{HistorySpec, HubError};

/// Events read from history per round trip to the store.
const PAGE: u32 = 500;

/// What a replay did, for the `resumed` frame or the subscribe reply.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Events replayed, over all channels.
    pub(crate) missed: u64,
    /// Channels whose missed events could not all be replayed; the client refetches them.
    pub(crate) unrecovered: Vec<String>,
    /// Each channel's position once the replay is done: where the client now stands.
    pub(crate) positions: Map<String, Value>,
}

impl Outcome {
    pub(crate) fn data(&self) -> Value {
        json!({
            "recovered": self.unrecovered.is_empty(),
            "missed": self.missed,
            "unrecovered": self.unrecovered,
            "positions": self.positions,
        })
    }
}

/// One channel's replay.
struct Replayed {
    recovered: bool,
    missed: u64,
    epoch: String,
    /// The newest seq the client has now; held live events up to it are dropped.
    cutoff: u64,
}

impl Session {
    /// Replays each `(channel, since, spec)`, then queues `answer(outcome)` (`resumed` or a
    /// reply), then releases the live events held meanwhile: the answer marks the end of the
    /// replay. The caller has subscribed the channels after calling `outbox.hold()`.
    pub(crate) async fn replay(
        &self,
        requests: Vec<(String, Position, HistorySpec)>,
        answer: impl FnOnce(&Outcome) -> String,
    ) {
        let mut outcome = Outcome::default();
        let mut cutoffs = Vec::with_capacity(requests.len());
        for (channel, since, spec) in requests {
            let channel: Arc<str> = channel.into();
            match self.replay_channel(&channel, &since, spec).await {
                Ok(done) => {
                    outcome.missed += done.missed;
                    if !done.recovered {
                        outcome.unrecovered.push(channel.to_string());
                    }
                    outcome.positions.insert(channel.to_string(), json!({"epoch": done.epoch, "seq": done.cutoff}));
                    cutoffs.push((channel, done.cutoff));
                }
                Err(e) => {
                    tracing::warn!(error = %e, %channel, "replay failed; reporting the channel as not recovered");
                    outcome.unrecovered.push(channel.to_string());
                }
            }
        }
        self.send(answer(&outcome));
        self.outbox.release(&cutoffs);
    }

    async fn replay_channel(
        &self,
        channel: &Arc<str>,
        since: &Position,
        spec: HistorySpec,
    ) -> Result<Replayed, HubError> {
        // What this connection already got live of the channel is not sent again.
        let sent = self.outbox.sent(channel);
        let already = sent.map_or(0, |s| s.last);
        let mut page = self.read(channel, spec, since.seq.max(already)).await?;
        let gone = since.seq.max(already) + 1 < page.oldest;
        let gap_before_live = sent.is_some_and(|s| since.seq + 1 < s.first);
        if page.epoch != since.epoch || since.seq > page.latest || gone || gap_before_live {
            let cutoff = page.latest.max(already);
            return Ok(Replayed { recovered: false, missed: 0, epoch: page.epoch, cutoff });
        }
        let epoch = page.epoch.clone();
        let mut missed = 0;
        let mut last = since.seq.max(already);
        loop {
            let full = page.events.len() as u64 == u64::from(PAGE);
            for event in &page.events {
                let frame = encode_stored(&self.app.slug, channel, Some(&epoch), event);
                self.outbox
                    .push_replayed(channel, event.seq, frame)
                    .await
                    .map_err(|_| HubError::Unavailable("the connection closed during the replay".into()))?;
                missed += 1;
                last = event.seq;
            }
            if !full {
                break;
            }
            page = self.read(channel, spec, last).await?;
            if page.epoch != epoch {
                // The history was lost mid-replay: what follows cannot be trusted to be whole.
                return Ok(Replayed { recovered: false, missed, epoch: page.epoch, cutoff: page.latest });
            }
        }
        Ok(Replayed { recovered: true, missed, epoch, cutoff: last })
    }

    async fn read(&self, channel: &str, spec: HistorySpec, after: u64) -> Result<HistoryPage, HubError> {
        let hub = &self.hub;
        history::read(hub.store().as_ref(), hub.memory(), &self.app.slug, channel, spec, after, PAGE).await
    }
}
