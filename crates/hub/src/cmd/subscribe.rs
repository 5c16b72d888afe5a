//! `subscribe {channel}`: join a channel the manifest's policy allows.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::{field, Refusal};
use crate::policy::{self, Denial};
use crate::session::Session;

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let channel = field(frame, "channel")?;
    let member = match &session.identity {
        Some(identity) => session
            .hub
            .store()
            .memberships(&session.app.spec.slug, &identity.user_id)
            .await
            .map_err(|e| (ErrorCode::Internal, e.to_string()))?
            .iter()
            .any(|c| c == channel),
        None => false,
    };
    policy::may_subscribe(&session.app.spec, session.identity.as_ref(), channel, || member).map_err(|d| match d {
        Denial::BadName(m) => (ErrorCode::BadRequest, format!("field `data.channel`: {m}")),
        Denial::Forbidden(m) => (ErrorCode::Forbidden, m),
    })?;
    session.app.registry.subscribe(session.meta.id, channel);
    session.send(ServerFrame::reply(
        frame.reference.as_ref(),
        json!({ "channel": channel }),
    ));
    Ok(())
}
