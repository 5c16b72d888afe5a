//! `resume {positions?}`: after a reconnect, replay what the client missed on each listed
//! channel (subscribing to those it may join), then send `resumed`. Without positions, a
//! device resumes from what it last acknowledged.

use switchboard_protocol::api::Position;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::subscribe::authorize;
use super::{positions, replayable, Refusal, MAX_POSITIONS};
use crate::session::Session;
use crate::HistorySpec;

type Requests = Vec<(String, Position, HistorySpec)>;

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let requests = match prepare(session, frame).await {
        Ok(requests) => requests,
        Err(refusal) => {
            session.end_resume_wait();
            return Err(refusal);
        }
    };
    // From here the replay owns the hold (begun at connect with `?resume=1`, or now).
    session.awaiting_resume = false;
    session.outbox.hold();
    for (channel, _, _) in &requests {
        session.hub.subscribe(&session.app, session.meta.id, channel).await;
    }
    let reference = frame.reference.as_ref();
    session.replay(requests, |outcome| ServerFrame::answer("resumed", reference, outcome.data())).await;
    Ok(())
}

async fn prepare(session: &Session, frame: &ClientFrame) -> Result<Requests, Refusal> {
    let listed = match frame.data.get("positions") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(value) => positions(value)?,
    };
    if listed.is_empty() {
        return acknowledged(session).await;
    }
    if listed.len() > MAX_POSITIONS {
        return Err((
            ErrorCode::BadRequest,
            format!("field `data.positions` names more than {MAX_POSITIONS} channels"),
        ));
    }
    let mut requests = Vec::with_capacity(listed.len());
    for (channel, since) in listed {
        let spec = replayable(session, &channel)?;
        if !session.app.registry.is_subscribed(session.meta.id, &channel) {
            authorize(session, &channel).await?;
        }
        requests.push((channel, since, spec));
    }
    Ok(requests)
}

/// The positions this device acknowledged, for channels it may still read.
async fn acknowledged(session: &Session) -> Result<Requests, Refusal> {
    let (Some(user), Some(device)) = (&session.meta.user_id, &session.meta.device) else {
        let message = "`resume` without positions continues from this device's acknowledged positions: \
                       connect with ?device=NAME (or a token with a `device` claim) and send `ack`, \
                       or list `data.positions`";
        return Err((ErrorCode::BadRequest, message.into()));
    };
    let acks = session.hub.store().acks(&session.app.spec.slug, user, Some(device)).await;
    let acks = acks.map_err(|e| (ErrorCode::Internal, format!("could not read acknowledged positions: {e}")))?;
    let mut requests = Vec::with_capacity(acks.len());
    for ack in acks {
        // A channel that lost its history or its permission since the ack is skipped.
        let Some(spec) = session.app.spec.history_of(&ack.channel) else { continue };
        let subscribed = session.app.registry.is_subscribed(session.meta.id, &ack.channel);
        if !subscribed && authorize(session, &ack.channel).await.is_err() {
            continue;
        }
        requests.push((ack.channel, Position { epoch: ack.epoch, seq: ack.seq }, spec));
    }
    Ok(requests)
}
