//! `unsubscribe {channel}`: leave a channel.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ServerFrame};

use super::{field, Refusal};
use crate::session::Session;

pub(crate) fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let channel = field(frame, "channel")?;
    let was = session.app.registry.unsubscribe(session.meta.id, channel);
    let data = json!({ "channel": channel, "was_subscribed": was });
    session.send(ServerFrame::reply(frame.reference.as_ref(), data));
    Ok(())
}
