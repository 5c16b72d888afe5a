//! `ack {positions}`: what this device has processed. The hub keeps the newest position per
//! user, device and channel, so a `resume` without positions continues from it.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};
use switchboard_store::DeviceAck;

use super::{positions, replayable, Refusal, MAX_POSITIONS};
use crate::clock;
use crate::session::Session;

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let (Some(user), Some(device)) = (&session.meta.user_id, &session.meta.device) else {
        let message = "`ack` needs an authenticated user and a device: connect with ?device=NAME \
                       (or a token with a `device` claim)";
        return Err((ErrorCode::BadRequest, message.into()));
    };
    let value = frame.data.get("positions").ok_or((ErrorCode::BadRequest, "missing field `data.positions`".into()))?;
    let listed = positions(value)?;
    if listed.is_empty() || listed.len() > MAX_POSITIONS {
        let message = format!("field `data.positions` must name 1 to {MAX_POSITIONS} channels");
        return Err((ErrorCode::BadRequest, message));
    }
    for (channel, _) in &listed {
        replayable(session, channel)?;
        if !session.app.registry.is_subscribed(session.meta.id, channel) {
            let message = format!("field `data.positions`: this connection is not subscribed to `{channel}`");
            return Err((ErrorCode::BadRequest, message));
        }
    }
    let now = clock::unix_ms();
    let acks: Vec<DeviceAck> = listed
        .into_iter()
        .map(|(channel, p)| DeviceAck { device: device.clone(), channel, epoch: p.epoch, seq: p.seq, acked_at_ms: now })
        .collect();
    let saved = session.hub.store().save_acks(&session.app.spec.slug, user, &acks).await;
    saved.map_err(|e| (ErrorCode::Internal, format!("could not keep the acknowledgement; send it again ({e})")))?;
    if frame.reference.is_some() {
        session.send(ServerFrame::reply(frame.reference.as_ref(), json!({ "acked": acks.len() })));
    }
    Ok(())
}
