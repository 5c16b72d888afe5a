//! `subscribe {channel}`: join a channel the manifest's policy allows.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::{field, Refusal};
use crate::policy::{self, Denial};
use crate::session::Session;

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let channel = field(frame, "channel")?;
    let spec = &session.app.spec;
    let identity = session.identity.as_ref();
    // Most channels are decided by name and token alone; only a denial is worth asking the
    // store whether the server made this user a member.
    let verdict = match policy::may_subscribe(spec, identity, channel, false) {
        Err(Denial::Forbidden(_)) if identity.is_some() && is_member(session, channel).await? => {
            policy::may_subscribe(spec, identity, channel, true)
        }
        verdict => verdict,
    };
    verdict.map_err(|d| match d {
        Denial::BadName(m) => (ErrorCode::BadRequest, format!("field `data.channel`: {m}")),
        Denial::Forbidden(m) => (ErrorCode::Forbidden, m),
    })?;
    session.app.registry.subscribe(session.meta.id, channel);
    session.send(ServerFrame::reply(frame.reference.as_ref(), json!({ "channel": channel })));
    Ok(())
}

async fn is_member(session: &Session, channel: &str) -> Result<bool, Refusal> {
    let Some(identity) = &session.identity else {
        return Ok(false);
    };
    let memberships = session.hub.store().memberships(&session.app.spec.slug, &identity.user_id).await;
    let memberships = memberships.map_err(|e| (ErrorCode::Internal, e.to_string()))?;
    Ok(memberships.iter().any(|c| c == channel))
}
